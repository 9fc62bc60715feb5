"""The ARM half of the sandbox: conventions first, then the operations.

Every request goes through the same gate: the bearer token (the sandbox's own or a fleet
principal's, before anything else, so that a stranger learns nothing, not even which
machines have faults), the injected faults, the route, the api-version, the resource names,
ARM's throttle budget of the token's principal, then Compute's own limits for the Compute
GETs its operation groups count. Every answer carries ``x-ms-request-id``,
``x-ms-correlation-request-id`` and the remaining-budget headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from core.sandbox import action_routes, resources, scale_sets, storage_routes
from core.sandbox.access import Access
from core.sandbox.api_versions import ARC_PATCH
from core.sandbox.arm_routes import Match, match
from core.sandbox.compute_limits import ComputeThrottle, ComputeVerdict, compute_operation
from core.sandbox.errors import ArmError, ProviderThrottled
from core.sandbox.graph import GraphQueryError, execute_query
from core.sandbox.handler_status import handler_status
from core.sandbox.machines import SimMachine
from core.sandbox.names import check_instance_id, check_machine_name, check_run_command_name
from core.sandbox.rbac import Rbac, rbac_of, required_action
from core.sandbox.runcommands import ARC, RunCommand
from core.sandbox.service import Operation, SandboxService, scale_set_kind
from core.sandbox.throttle import ArmThrottle, GraphQuota, Verdict

log = logging.getLogger(__name__)

def routing_request_id(region: str, request_id: str) -> str:
    """``x-ms-routing-request-id`` as ARM sends it: the serving ARM instance's region (upper
    case, no spaces), a UTC timestamp and the request id (``WESTEUROPE:20240409T093223Z:
    <guid>``). The reference does not describe it; its shape is what ARM's answers carry, and
    it is how a client learns which regional throttle scope counted its request."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{region.replace(' ', '').upper()}:{stamp}:{request_id}"


class ArmApp:
    """An ASGI app answering the Compute, HybridCompute and Resource Graph endpoints."""

    def __init__(self, service: SandboxService, access: Access) -> None:
        self.service = service
        self._access = access
        self.throttle = ArmThrottle(service.fleet.throttle)
        self.compute_throttle = ComputeThrottle(service.fleet.throttle.compute)
        self.graph_quota = GraphQuota(service.fleet.throttle)
        self.rbac: Rbac = rbac_of([(p.name, p.roles) for p in service.fleet.principals])
        self._dice = service.rng

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        request_id = str(uuid.uuid4())
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request.headers.get(
                "x-ms-correlation-request-id", request_id
            ),
            "x-ms-routing-request-id": routing_request_id(
                self.service.fleet.throttle.region, request_id),
        }
        # Compute reports each applicable policy in a header of its own (reference 7.3).
        resource_limits: list[str] = []
        try:
            response = await self._answer(request, headers, resource_limits)
        except _Drop:
            await _drop_connection(send)
            return
        except ArmError as error:
            response = JSONResponse(error.body(), status_code=error.status, headers=error.headers)
        except Exception:  # an emulator bug must answer 500, not kill the server
            log.exception("sandbox: unhandled error answering %s %s", request.method, request.url)
            response = JSONResponse(
                {"error": {"code": "InternalServerError",
                           "message": "The sandbox failed to answer; see its log."}},
                status_code=500,
            )
        response.headers.update(headers)
        for value in resource_limits:
            response.headers.append("x-ms-ratelimit-remaining-resource", value)
        await response(scope, receive, send)

    async def _answer(
        self, request: Request, headers: dict[str, str], resource_limits: list[str]
    ) -> Response:
        principal = _check_auth(request, self._access)
        segments = _segments(request)
        found = match(segments)
        machine = self._machine_or_none(found)
        await self._inject_faults(machine)
        if found is None:
            raise _unknown_path(segments)
        if request.method not in found.route.methods:
            raise ArmError(405, "MethodNotAllowed",
                           f"The requested method '{request.method}' is not allowed for "
                           f"'{request.url.path}'. Allowed: {', '.join(found.route.methods)}.")
        version = _check_api_version(request, found)
        _check_names(found)
        if found.route.name == "resource_graph":
            return await self._resource_graph(request, headers, principal)
        verdict = self.throttle.charge(found.params["sub"], principal, request.method)
        headers.update(verdict.headers())
        if not verdict.allowed:
            raise _throttled(verdict, found.params["sub"], principal)
        if found.route.name == "permissions":
            return self._permissions(found, segments, principal)
        self._authorize(request, found, segments, principal)
        self._charge_compute(request, found, machine, headers, resource_limits)
        handler = getattr(self, "_" + found.route.name)
        response: Response = await handler(request, found, version)
        return response

    def _charge_compute(
        self, request: Request, found: Match, machine: SimMachine | None,
        headers: dict[str, str], resource_limits: list[str],
    ) -> None:
        """Count a Compute GET in its operation groups, after ARM let it through."""
        operation = compute_operation(found.route.name, request.method,
                                      request.query_params.get("$expand"))
        if operation is None or found.route.kind == "arc":
            return
        # CRP counts per region of the resource: the machine's, or the operation's location.
        region = machine.spec.location if machine is not None else found.params.get("location")
        if region is None:
            return  # no such machine: answered 404 before Compute counts anything
        verdict = self.compute_throttle.charge(found.params["sub"], region, operation)
        if verdict is None:
            return
        resource_limits.extend(verdict.header_values())
        if not verdict.allowed:
            raise _provider_throttled(verdict)
        headers["x-ms-request-charge"] = "1"

    # ------------------------------------------------------------------------ authorization

    def _authorize(self, request: Request, found: Match, segments: list[str],
                   principal: str) -> None:
        """403 AuthorizationFailed unless the principal's roles grant the route's action at
        its scope (the resource the path names; the machine for the action API's POST)."""
        action = required_action(found.route.name, found.route.kind, request.method)
        if action is None:
            return
        named = segments[:-1] if found.route.name == "vm_run_command_action" else segments
        self.rbac.check(principal, action, "/" + "/".join(named))

    def _permissions(self, found: Match, segments: list[str], principal: str) -> Response:
        self._check_subscription(found.params["sub"])
        scope = "/" + "/".join(segments[:-3])
        return JSONResponse({"value": self.rbac.permissions(principal, scope)})

    # ------------------------------------------------------------------------------ faults

    def _machine_or_none(self, found: Match | None) -> SimMachine | None:
        if found is None or "machine" not in found.params:
            return None
        key = (found.params["sub"].lower(), found.params["rg"].lower(), _machine_kind(found),
               found.params["machine"].lower())
        return self.service.machines.get(key)

    async def _inject_faults(self, machine: SimMachine | None) -> None:
        faults = self.service.faults_for(machine)
        if not faults.any_request_fault:
            return
        if faults.latency:
            await asyncio.sleep(faults.latency)
        storm = faults.throttle_storm
        if storm is not None:
            phase = asyncio.get_running_loop().time() % storm.every
            if phase < storm.lasting:
                retry = max(1, math.ceil(storm.lasting - phase))
                raise ArmError(429, "TooManyRequests",
                               "The request is being throttled (sandbox 429 storm).",
                               headers={"Retry-After": str(retry)})
        if faults.drop_rate and self._dice.random() < faults.drop_rate:
            raise _Drop
        if faults.error_rate and self._dice.random() < faults.error_rate:
            status = self._dice.choice((500, 503))
            code = "InternalServerError" if status == 500 else "ServiceUnavailable"
            raise ArmError(status, code, "The server encountered an internal error (sandbox "
                           "fault injection). Please retry the request.",
                           headers={"Retry-After": "1"} if status == 503 else None)

    # ------------------------------------------------------------------------------ machines

    def _target(self, found: Match) -> SimMachine:
        params = found.params
        return self.service.machine(params["sub"], params["rg"], _machine_kind(found),
                                    params["machine"])

    async def _vm(self, request: Request, found: Match, version: str) -> Response:
        """A VM, or a Uniform scale set's instance (route ``vmss_vm``), as ARM shows it."""
        machine = self._target(found)
        expand = _vm_expand(request)
        commands = self.service.run_commands(machine).values()
        shown = scale_sets.instance_resource if machine.uniform else resources.vm_resource
        return JSONResponse(shown(
            machine, expand=expand, run_command_names=[c.name for c in commands],
            handler_statuses={c.name: handler_status(c) for c in commands}))

    _vmss_vm = _vm

    async def _vm_instance_view(self, request: Request, found: Match, version: str) -> Response:
        machine = self._target(found)
        commands = self.service.run_commands(machine).values()
        view = scale_sets.instance_view if machine.uniform else resources.vm_instance_view
        return JSONResponse(view(
            machine, run_command_names=[c.name for c in commands],
            handler_statuses={c.name: handler_status(c) for c in commands}))

    async def _machine(self, request: Request, found: Match, version: str) -> Response:
        machine = self._target(found)
        return JSONResponse(resources.arc_machine(
            machine, expand=request.query_params.get("$expand"),
            tenant_id=self.service.fleet.tenant))

    async def _vm_list(self, request: Request, found: Match, version: str) -> Response:
        machines = self.service.machines_in(found.params["sub"], found.params.get("rg"), "vm")
        return JSONResponse({"value": [resources.vm_resource(m, expand=None) for m in machines]})

    async def _machine_list(self, request: Request, found: Match, version: str) -> Response:
        machines = self.service.machines_in(found.params["sub"], found.params.get("rg"), "arc")
        tenant = self.service.fleet.tenant
        return JSONResponse(
            {"value": [resources.arc_machine(m, tenant_id=tenant) for m in machines]})

    # -------------------------------------------------------------------------- run commands

    async def _run_commands(self, request: Request, found: Match, version: str) -> Response:
        machine = self._target(found)
        with_view = _wants_instance_view(request, machine)
        commands = self.service.run_commands(machine).values()
        return JSONResponse({"value": [c.to_json(instance_view=with_view) for c in commands]})

    async def _run_command(self, request: Request, found: Match, version: str) -> Response:
        machine = self._target(found)
        name = found.params["name"]
        if request.method == "GET":
            command = self.service.run_command(machine, name)
            return JSONResponse(command.to_json(
                instance_view=_wants_instance_view(request, machine)))
        if request.method == "DELETE":
            operation = await self.service.delete_run_command(machine, name)
            if operation is None:
                return Response(status_code=204)
            return Response(status_code=202, headers=self._lro_headers(request, operation))
        if self.service.faults_for(machine).managed_forbidden:
            raise _forbidden(machine, name, request.method)
        body = await _json_body(request)
        if request.method == "PATCH":
            if not machine.is_vm:
                return self._arc_patch(request, machine, name, body, version)
            body = self.service.merged_patch(machine, name, body)
        created, command, operation = await self.service.put_run_command(machine, name, body)
        headers = self._lro_headers(request, operation) if operation is not None else {}
        status = 201 if created else 200
        return JSONResponse(command.to_json(instance_view=False), status_code=status,
                            headers=headers)

    def _arc_patch(
        self, request: Request, machine: SimMachine, name: str, body: Any, version: str
    ) -> Response:
        if version not in ARC_PATCH:
            raise ArmError(405, "MethodNotAllowed",
                           f"PATCH of Arc run commands is not available in api-version "
                           f"'{version}'; use PUT with the full body. PATCH exists in: "
                           f"{', '.join(ARC_PATCH)}.")
        command = self.service.patch_run_command(machine, name, body)
        return JSONResponse(command.to_json(instance_view=True))

    # ------------------------------------------------- the action API and built-in commands

    async def _vm_run_command_action(
        self, request: Request, found: Match, version: str
    ) -> Response:
        machine = self._target(found)
        run = await self.service.action_runs.start(machine, await _json_body(request),
                                                   self.service.faults_for(machine))
        return action_routes.accepted(request, run, self._retry_after())

    async def _builtin_run_commands(
        self, request: Request, found: Match, version: str
    ) -> Response:
        self._check_subscription(found.params["sub"])
        return action_routes.builtin_list()

    async def _builtin_run_command(
        self, request: Request, found: Match, version: str
    ) -> Response:
        self._check_subscription(found.params["sub"])
        return action_routes.builtin_document(found.params["command"])

    def _check_subscription(self, subscription: str) -> None:
        if subscription.lower() not in {s.lower() for s in self.service.fleet.subscriptions}:
            raise ArmError(404, "SubscriptionNotFound",
                           f"The subscription '{subscription}' could not be found.")

    def _retry_after(self) -> str:
        return str(max(1, round(self.service.fleet.flush_interval)))

    # ---------------------------------------------------------------------- Microsoft.Storage

    async def _storage_accounts(self, request: Request, found: Match, version: str) -> Response:
        return storage_routes.account_list(request, self.service.storage, found.params)

    async def _blob_container(self, request: Request, found: Match, version: str) -> Response:
        # BlobContainers_Create's body is a BlobContainer whose fields are all optional.
        has_body = request.method == "PUT" and bool(await request.body())
        body = await _json_body(request) if has_body else {}
        return await storage_routes.container(request, self.service.storage, found.params, body)

    # ---------------------------------------------------------------- long-running operations

    def _lro_headers(self, request: Request, operation: Operation) -> dict[str, str]:
        base = f"{request.url.scheme}://{request.url.netloc}"
        version = request.query_params["api-version"]
        prefix = f"{base}/subscriptions/{operation.subscription}/providers"
        if operation.provider == ARC:
            where = f"{prefix}/Microsoft.HybridCompute/locations/{operation.location}"
            status_url = f"{where}/operationStatus/{operation.id}?api-version={version}"
            result_url = f"{where}/operationResults/{operation.id}?api-version={version}"
        else:
            where = f"{prefix}/Microsoft.Compute/locations/{operation.location}"
            status_url = f"{where}/operations/{operation.id}?api-version={version}"
            result_url = f"{where}/operations/{operation.id}?monitor=true&api-version={version}"
        return {
            "Azure-AsyncOperation": status_url,
            "Location": result_url,
            "Retry-After": str(max(1, round(self.service.fleet.flush_interval))),
        }

    async def _compute_operation(self, request: Request, found: Match, version: str) -> Response:
        action = self.service.action_runs.get(found.params["operation"])
        if action is not None:
            return action_routes.operation(request, action, self._retry_after())
        operation = self.service.operation(found.params["operation"])
        if request.query_params.get("monitor", "").lower() == "true":
            return self._operation_result(request, operation)
        return JSONResponse(self._operation_status(operation))

    async def _arc_operation_status(
        self, request: Request, found: Match, version: str
    ) -> Response:
        operation = self.service.operation(found.params["operation"])
        body = self._operation_status(operation)
        body["id"] = request.url.path
        return JSONResponse(body)

    async def _arc_operation_result(
        self, request: Request, found: Match, version: str
    ) -> Response:
        return self._operation_result(request, self.service.operation(found.params["operation"]))

    def _operation_status(self, operation: Operation) -> dict[str, Any]:
        status = operation.status
        body: dict[str, Any] = {
            "name": operation.id,
            "status": status,
            "startTime": operation.started.isoformat(),
        }
        if status != "InProgress":
            ended = operation.ended or operation.started
            body["endTime"] = ended.isoformat()
        error = operation.error
        if error is not None:
            body["error"] = error
        return body

    def _operation_result(self, request: Request, operation: Operation) -> Response:
        status = operation.status
        if status == "InProgress":
            headers = {"Location": str(request.url),
                       "Retry-After": str(max(1, round(self.service.fleet.flush_interval)))}
            return Response(status_code=202, headers=headers)
        error = operation.error
        if error is not None:
            return JSONResponse({"error": error}, status_code=409)
        if operation.action == "delete":
            return Response(status_code=204)
        command: RunCommand = operation.run_command
        return JSONResponse(command.to_json(instance_view=command.provider == ARC))

    # --------------------------------------------------------------------------- graph

    async def _resource_graph(
        self, request: Request, headers: dict[str, str], principal: str
    ) -> Response:
        allowed, quota_headers = self.graph_quota.charge(principal)
        headers.update(quota_headers)
        if not allowed:
            raise ArmError(429, "RateLimiting",
                           "Please provide below info when asking for support: timestamp = "
                           f"..., correlationId = {headers['x-ms-correlation-request-id']}. "
                           "Client application has been throttled and should not attempt to "
                           "repeat the request until an amount of time has elapsed.",
                           headers={"Retry-After": quota_headers["Retry-After"]})
        body = await _json_body(request)
        tenant = self.service.fleet.tenant
        rows = [resources.graph_row(m, tenant_id=tenant) for m in self.service.all_machines()
                if not m.uniform]
        rows += [scale_sets.scale_set_row(s, tenant_id=tenant)
                 for s in self.service.fleet.scale_sets]
        rows += self.service.storage.graph_rows(f"{request.url.scheme}://{request.url.netloc}",
                                                tenant_id=tenant)
        instances = [scale_sets.compute_resources_row(m, tenant_id=tenant)
                     for m in self.service.all_machines() if m.uniform]
        try:
            return JSONResponse(execute_query(body if isinstance(body, dict) else {}, rows,
                                              instances))
        except GraphQueryError as error:
            return JSONResponse(error.body, status_code=400)


class _Drop(Exception):
    """Close the connection mid-answer (the drop_rate fault)."""


async def _drop_connection(send: Send) -> None:
    # Headers promising a body that never comes, then the app returns: the server has to
    # close the connection, and the client sees it dropped mid-answer.
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1000"), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"trunc', "more_body": True})


def _segments(request: Request) -> list[str]:
    # Split the path as sent, then decode each segment: an encoded '/' stays inside its
    # name (to be refused there) instead of making up segments of its own.
    raw = request.scope.get("raw_path") or request.scope["path"].encode("utf-8")
    path = raw.split(b"?", 1)[0].decode("latin-1")
    return [unquote(s, errors="replace") for s in path.split("/") if s]


def _check_auth(request: Request, access: Access) -> str:
    """The principal whose token the request presents; 401 for anything else."""
    value = request.headers.get("authorization")
    if value is None:
        raise ArmError(401, "AuthenticationFailed",
                       "Authentication failed. The 'Authorization' header is missing.",
                       headers={"WWW-Authenticate": 'Bearer authorization_uri="sandbox", '
                                'error="invalid_token", error_description="The authentication '
                                'failed because of missing \'Authorization\' header."'})
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ArmError(401, "InvalidAuthenticationToken",
                       "The access token is invalid: the 'Authorization' header must be "
                       "'Bearer <token>' with the sandbox's token.",
                       headers={"WWW-Authenticate": _INVALID_TOKEN_CHALLENGE})
    principal = access.principal(token.strip())
    if principal is None:
        raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid.",
                       headers={"WWW-Authenticate": _INVALID_TOKEN_CHALLENGE})
    return principal


_INVALID_TOKEN_CHALLENGE = ('Bearer authorization_uri="sandbox", error="invalid_token", '
                            'error_description="The access token is invalid."')


def _machine_kind(found: Match) -> str:
    """The machine-kind part of the service's key for the machine a route names."""
    if found.route.kind == "vmss":
        return scale_set_kind(found.params["scaleset"])
    return found.route.kind


def _check_names(found: Match) -> None:
    kind = found.route.kind
    if kind == "vmss":
        check_machine_name(found.params["scaleset"], "vmss")
        check_instance_id(found.params["machine"])
        kind = "vm"
    elif "machine" in found.params:
        check_machine_name(found.params["machine"], kind)
    if "name" in found.params:
        check_run_command_name(found.params["name"], kind)


def _check_api_version(request: Request, found: Match) -> str:
    version = request.query_params.get("api-version")
    if not version:
        raise ArmError(400, "MissingApiVersionParameter",
                       "The api-version query parameter (?api-version=) is required for all "
                       "requests.")
    if version not in found.route.versions:
        raise ArmError(400, "InvalidApiVersionParameter",
                       f"The api-version '{version}' is invalid. The supported versions are "
                       f"'{','.join(found.route.versions)}'.")
    return version


def _throttled(verdict: Verdict, subscription: str, principal: str) -> ArmError:
    noun = verdict.kind[:-1]
    # The code and wording are common reports of ARM's 429 (reference 7.4, unconfirmed).
    who = ("exceeded the subscription's global limit" if verdict.by_global
           else f"actor '{principal}' exceeded")
    return ArmError(
        429, "SubscriptionRequestsThrottled",
        f"Number of '{noun}' requests for subscription '{subscription}' {who}. Please try "
        f"again after '{verdict.retry_after}' seconds after additional tokens are available. "
        "Refer to https://aka.ms/arm-throttling for additional information.",
        headers={"Retry-After": str(verdict.retry_after)},
    )


def _provider_throttled(verdict: ComputeVerdict) -> ProviderThrottled:
    return ProviderThrottled(
        429, "OperationNotAllowed",
        "The server rejected the request because too many requests have been received for "
        "this subscription.",
        details=[window.detail() for window in verdict.spent],
        headers={"Retry-After": str(verdict.retry_after)},
    )


def _vm_expand(request: Request) -> str | None:
    """A VM's (or scale set instance's) ``$expand``: ``instanceView``, ``userData`` or none."""
    expand = request.query_params.get("$expand")
    if expand is not None and expand.lower() not in ("instanceview", "userdata"):
        raise ArmError(400, "InvalidParameter",
                       f"The value '{expand}' of parameter '$expand' is not valid; "
                       "allowed: instanceView, userData.")
    return expand


def _unknown_path(segments: list[str]) -> ArmError:
    lowered = [s.lower() for s in segments]
    served = ("The sandbox serves Microsoft.Compute virtualMachines and Uniform scale sets' "
              "virtualMachineScaleSets/{set}/virtualMachines/{instance id}, their runCommands "
              "and the action runCommand, the locations' built-in runCommands, "
              "Microsoft.HybridCompute machines and runCommands, Microsoft.Storage accounts "
              "(listed) and blob containers, Microsoft.ResourceGraph resources, and "
              "Microsoft.Authorization permissions.")
    if "providers" in lowered and len(segments) > lowered.index("providers") + 1:
        namespace = segments[lowered.index("providers") + 1]
        if namespace.lower() not in _KNOWN_NAMESPACES:
            return ArmError(400, "InvalidResourceNamespace",
                            f"The resource namespace '{namespace}' is invalid. {served}")
        return ArmError(404, "InvalidResourceType",
                        f"The resource type at '/{'/'.join(segments)}' could not be found in "
                        f"the namespace '{namespace}'. {served}")
    return ArmError(404, "NotFound", f"The sandbox has no ARM endpoint at this path. {served}")


_KNOWN_NAMESPACES = {"microsoft.compute", "microsoft.hybridcompute", "microsoft.resourcegraph",
                     "microsoft.storage", "microsoft.authorization"}


def _wants_instance_view(request: Request, machine: SimMachine) -> bool:
    # Compute returns the instance view only when asked; Arc always returns it.
    expand = request.query_params.get("$expand", "")
    return not machine.is_vm or expand.lower() == "instanceview"


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise ArmError(400, "InvalidRequestContent", "The request content was empty.")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArmError(400, "InvalidRequestContent",
                       f"The request content was invalid and could not be deserialized: {exc}"
                       ) from None



def _forbidden(machine: SimMachine, name: str, method: str) -> ArmError:
    """ARM's answer to a principal without the write permission (the managed_forbidden
    fault): 403 AuthorizationFailed naming the action and the scope (reference 2.6)."""
    provider = "Microsoft.Compute/virtualMachines" if machine.is_vm else (
        "Microsoft.HybridCompute/machines")
    return ArmError(403, "AuthorizationFailed",
                    f"The client does not have authorization to perform action "
                    f"'{provider}/runCommands/write' over scope '{machine.resource_id}/runCommands/"
                    f"{name}' or the scope is invalid. If access was recently granted, please "
                    "refresh your credentials.")
