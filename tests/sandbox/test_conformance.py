"""Conformance: the request/response examples in ``tests/specs`` replay against the sandbox.

For each example of an emulated operation, a fleet holds the machine the example names (its
subscription, resource group and name, as spelled in the example: placeholders such as
``{subscription-id}`` are valid fleet subscriptions; a scale set's instance is instance 0 of a
one-instance Uniform scale set of the example's name), on Windows because the examples' scripts
are PowerShell. Run commands the example's responses show are created first. Then the example's
request is sent, and each answer must have a status the example documents, the shape of the
example's body for that status (``shape_mismatches``), a body valid against the operation's
schema, and, for long-running answers, the example's LRO headers, whose URLs are then followed.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.fleet import FleetSpec
from tests.sandbox.arm_client import Api, make_fleet, sandbox_api
from tests.sandbox.openapi import STORAGE_EXAMPLES, Example, shape_mismatches, spec_index
from tests.sandbox.test_openapi_support import EXPECTED_INVALID_RESPONSES

COMPUTE = "compute/ComputeRP/stable/2025-04-01/examples/runCommandExamples/"
ARC = "hybridcompute/stable/2025-01-13/examples/"
ARG = "resourcegraph/stable/2024-04-01/examples/"
INSTANCE_VIEW = ("compute/ComputeRP/stable/2025-04-01/examples/virtualMachineExamples/"
                 "VirtualMachine_Get_InstanceView.json")
ARG_SUBSCRIPTION = "cfbbd179-59d2-4052-aa06-9270a38aa9d6"

NOT_EMULATED: dict[str, str] = {}
"""Examples of operations the sandbox does not serve, and why (none since the action API)."""
# The location-wide built-in command documents (no machine in their path).
BUILTIN_DOCUMENTS = {"VirtualMachineRunCommands_List", "VirtualMachineRunCommands_Get"}
# The action API (POST .../runCommand) on a VM and on a Uniform scale set's instance.
ACTIONS = {"VirtualMachines_RunCommand", "VirtualMachineScaleSetVMs_RunCommand"}
EXAMPLES = {e.name: e for e in spec_index().load_examples()}
# Microsoft.Storage's examples are replayed by test_storage_conformance.py (no machines).
IN_SCOPE = [e for name, e in EXAMPLES.items()
            if name not in NOT_EMULATED and not name.startswith(STORAGE_EXAMPLES)]

_ASYNC_DELETE = ("a delete is never synchronous: 202 with Location while the script is "
                 "killed, 204 when there is nothing to delete")
# Documented statuses the sandbox never answers, and why.
NEVER_PRODUCED = {
    (COMPUTE + "VirtualMachineRunCommand_CreateOrUpdate.json", 202):
        "the 2025-04-01 spec does not declare a 202 for PUT (specs/README.md); a create is 201 "
        "with the same Azure-AsyncOperation/Location headers",
    (COMPUTE + "VirtualMachineRunCommand_Delete.json", 200): _ASYNC_DELETE,
    (COMPUTE + "VirtualMachineScaleSetVMRunCommand_Delete.json", 200): _ASYNC_DELETE,
    (ARC + "runCommand/RunCommands_Update.json", 202):
        "the 2025-01-13 PATCH changes tags only, which takes effect at once: always 200",
}
# Example requests the sandbox refuses, and why.
REFUSED_REQUESTS = {
    ARG + "ResourcesNextPageQuery.json": "its $skipToken is invented (base64 of '{ \"no\": "
    "\"luck\", ... }'); a token is opaque and must come from the previous page, so it is "
    "400 InvalidSkipToken here, then replayed with the first page's token",
}
_UNREACHABLE_BLOBS = (
    "its scriptUri and blob URIs are on mystorageaccount.blob.core.windows.net, which the sandbox "
    "cannot reach (it serves blobs on this machine only); with the example's "
    "treatFailureAsDeploymentFailure true that failure fails the deployment (provisioningState "
    "Failed, reference 2: 'a script failure makes provisioningState Failed'), not the example's "
    "Succeeded. The replay sends false; test_a_failing_deployment_of_the_scale_set_example "
    "replays the request as it is")
# Example requests replayed with a field changed: (example, field of properties) -> (value, why).
BENT_REQUESTS: dict[tuple[str, str], tuple[Any, str]] = {
    (COMPUTE + "VirtualMachineScaleSetVMRunCommand_CreateOrUpdate.json",
     "treatFailureAsDeploymentFailure"): (False, _UNREACHABLE_BLOBS),
}
_NO_TAGS = "the request sets no tags, so the resource has none; the example's tags are invented"
# Paths of an example's body that our answer lacks or types differently, and why.
ALLOWED_MISMATCHES: dict[str, dict[str, str]] = {
    COMPUTE + "VirtualMachineRunCommand_CreateOrUpdate.json": {"tags": _NO_TAGS},
    ARC + "machine/Machines_Get.json": {
        "properties.licenseProfile": "the license instance view comes with $expand=instanceView "
        "only (HybridCompute.json: the $expand enum of Machines_Get); replayed with it too",
        "properties.osProfile.linuxConfiguration.patchSettings": "a Windows machine fills only "
        "windowsConfiguration; the example fills both, with nulls",
        # Null where the example invents a value the sandbox's machine cannot have (the
        # example itself has null for district, adFqdn, ...):
        "properties.locationData.city": "no physical location is simulated",
        "properties.locationData.countryOrRegion": "no physical location is simulated",
        "properties.parentClusterResourceId": "not an Azure Stack HCI machine",
        "properties.privateLinkScopeResourceId": "no private link scope",
        "properties.agentConfiguration.proxyUrl": "the agent uses no proxy",
        **{f"properties.licenseProfile.productProfile.{key}": "the machine is not enrolled in "
           "a product subscription (subscriptionStatus Unknown), so it has no such dates"
           for key in ("enrollmentDate", "billingStartDate", "disenrollmentDate",
                       "billingEndDate")},
    },
    INSTANCE_VIEW: {
        "bootDiagnostics": "boot diagnostics are not simulated (resources.vm_instance_view)",
        "patchStatus": "patch assessment is not simulated (resources.vm_instance_view)",
        "extensions[].statuses[].message": "the run-command handler's message is the run's "
        "instanceView JSON, which the run command resource has (as test_resources.py)",
        "statuses[].time": "the PowerState status has no time, as the example's own second "
        "status; shape_mismatches compares every item with the first (provisioning) one",
    },
}
# Operation-status states (reference 2.4, the generic ARM async protocol).
OPERATION_STATES = {"InProgress", "Succeeded", "Failed", "Canceled"}


def _fleet(example: Example) -> FleetSpec:
    params = example.parameters
    if example.operation_id in BUILTIN_DOCUMENTS:
        machines = [{"name": "vm", "kind": "vm", "os": "windows",
                     "subscription": params["subscriptionId"]}]
    elif "vmScaleSetName" in params:  # instance 0 of a Uniform scale set
        return make_fleet(scale_sets=[_simulated_if_no_pwsh(example, {
            "name": params["vmScaleSetName"], "orchestration": "Uniform", "count": 1,
            "os": "windows", "subscription": params["subscriptionId"],
            "resource_group": params["resourceGroupName"], "location": "westus"})],
            pickup_delay=0.2)
    elif example.operation_id in ACTIONS:
        machines = [_simulated_if_no_pwsh(example, {
            "name": params["vmName"], "kind": "vm", "os": "windows",
            "subscription": params["subscriptionId"],
            "resource_group": params["resourceGroupName"], "location": "westus"})]
    elif example.operation_id == "Resources":
        machines = [{"name": "test-{n}", "count": 10, "kind": "vm", "os": "windows",
                     "subscription": ARG_SUBSCRIPTION, "tags": {"tag1": "Value1"}}]
    else:
        arc = "machineName" in params
        machines = [{"name": params["machineName" if arc else "vmName"],
                     "kind": "arc" if arc else "vm", "os": "windows",
                     "subscription": params["subscriptionId"],
                     "resource_group": params["resourceGroupName"],
                     "location": "eastus2" if arc else "westus"}]
    # The agent picks a run up after 0.2 s, so an LRO is seen in progress at least once.
    return make_fleet(*machines, pickup_delay=0.2)


# What each action example's PowerShell script writes (the result's StdOut message).
_ACTION_OUTPUT = {
    COMPUTE + "VirtualMachineRunCommand.json":
        "This is a sample script with parameters value1 value2",
    COMPUTE + "VirtualMachineScaleSetVMRunCommand.json": "Hello World!",
}


def _simulated_if_no_pwsh(example: Example, machine: dict[str, Any]) -> dict[str, Any]:
    """An action example's RunPowerShellScript needs pwsh; without it the machine plays the
    example's output line instead."""
    if example.operation_id not in ACTIONS or shutil.which("pwsh") is not None:
        return machine
    return machine | {"executor": "simulated", "simulate": {
        "output": _ACTION_OUTPUT[example.name], "duration": [0.3, 0.3]}}


def _writable(resource: dict[str, Any]) -> dict[str, Any]:
    """A PUT body with the fields of a run command the example shows."""
    properties = {k: v for k, v in resource["properties"].items()
                  if k not in ("provisioningState", "instanceView")}
    body = {"location": resource["location"], "properties": properties}
    return body | ({"tags": resource["tags"]} if resource.get("tags") else {})


def _seeds(example: Example) -> dict[str, dict[str, Any]]:
    """The run commands (name -> PUT body) that must exist before the example's request."""
    operation, name = example.operation_id, example.parameters.get("runCommandName", "")
    if operation in BUILTIN_DOCUMENTS:
        return {}
    if operation.endswith("_Delete"):
        put = EXAMPLES[example.name.replace("_Delete", "_CreateOrUpdate")]
        return {name: put.request_body}
    if name and operation.endswith(("_Get", "_GetByVirtualMachine", "_Update")):
        return {name: _writable(example.responses[200]["body"])}
    if operation == "VirtualMachines_InstanceView":  # the example shows an extension
        return {"myRunCommand": _writable(EXAMPLES[COMPUTE + "VirtualMachineRunCommand_Get.json"]
                                          .responses[200]["body"])}
    if operation.endswith(("_List", "_ListByVirtualMachine")):
        return {item["name"]: _writable(item) for item in example.responses[200]["body"]["value"]}
    return {}


def _machine_path(example: Example) -> str:
    found = re.match(r".*/(virtualMachines|machines)/[^/?]+", spec_index().request_path(example))
    assert found, example.name
    return found[0]


def _request_body(example: Example) -> Any:
    """The example's request body, with its ``BENT_REQUESTS`` changes."""
    body = example.request_body
    for (name, field), (value, _) in BENT_REQUESTS.items():
        if name == example.name:
            body = body | {"properties": body["properties"] | {field: value}}
    return body


async def _send(api: Api, example: Example, body: Any = None, **query: str) -> httpx.Response:
    method = spec_index().operation(example.operation_id).method.upper()
    url = spec_index().request_path(example) + "".join(f"&{k}={v}" for k, v in query.items())
    return await api.client.request(method, url,
                                    json=_request_body(example) if body is None else body)


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


async def _seed(api: Api, example: Example) -> None:
    seeds = _seeds(example)
    if not seeds:
        return
    machine, version = _machine_path(example), example.parameters["api-version"]
    for name, body in seeds.items():
        created = await api.client.put(f"{machine}/runCommands/{name}",
                                       params={"api-version": version}, json=body)
        assert created.status_code == 201, created.text
    deadline = time.monotonic() + 5
    for name in seeds:  # finished: the example's instanceView has startTime and endTime
        while not await _finished(api, machine, name, version):
            assert time.monotonic() < deadline, f"{name} did not finish within 5 s"
            await asyncio.sleep(0.05)


async def _finished(api: Api, machine: str, name: str, version: str) -> bool:
    answer = await api.client.get(f"{machine}/runCommands/{name}",
                                  params={"api-version": version, "$expand": "instanceView"})
    return answer.json()["properties"]["instanceView"].get("endTime") is not None


def _lro_headers(example: Example, status: int) -> list[str]:
    """The LRO headers the example shows for a 201 of PUT or a 202 of DELETE."""
    headers = example.responses[status].get("headers") or {}
    if not headers and status == 201:
        # Compute's PUT shows its LRO headers on the (undeclared) 202, the sandbox's 201.
        headers = example.responses.get(202, {}).get("headers") or {}
    return sorted(headers)


async def _follow(api: Api, example: Example, answer: httpx.Response,
                  final: int) -> httpx.Response:
    """The Azure-AsyncOperation and Location URLs of an LRO answer, until it is done; the
    Location URL's final answer."""
    operation_url = answer.headers.get("Azure-AsyncOperation")
    if operation_url:
        status = await api.client.get(operation_url)
        assert status.status_code == 200 and status.json()["status"] in OPERATION_STATES
        assert status.json()["name"] and status.json()["startTime"]
    deadline, polls = time.monotonic() + 5, []
    while (result := await api.client.get(answer.headers["Location"])).status_code == 202:
        assert result.content == b"" and int(result.headers["Retry-After"]) >= 1
        assert time.monotonic() < deadline, "the operation did not end within 5 s"
        polls.append(result)
        await asyncio.sleep(0.05)
    # The agent's pickup delay keeps a PUT in progress for the first poll; a DELETE may be
    # done by then (killing a finished run takes no time).
    assert polls or final == 204, "the Location URL never answered 202 during the pickup"
    assert result.status_code == final, result.text
    if operation_url:
        status = await api.client.get(operation_url)
        assert status.json()["status"] in OPERATION_STATES - {"InProgress"}
        assert status.json()["endTime"]
    if final == 200 and example.operation_id not in ACTIONS:
        _check_answer(example, 200, result)  # a PUT's final answer: the resource, as its 200
    return result


def _as_requested(example: Example, value: str) -> str:
    """An id of the example's body with its subscription spelled as in its request: the
    scale-set List example asks for ``{subscription-id}`` and answers ``{subscriptionId}``."""
    return value.replace("/subscriptions/{subscriptionId}/",
                         f"/subscriptions/{example.parameters['subscriptionId']}/")


def _check_answer(example: Example, status: int, answer: httpx.Response) -> None:
    """The answer has ``status``, the example's body shape and a schema-valid body."""
    assert answer.status_code == status, answer.text
    assert status in example.responses, f"{status} is not documented by {example.name}"
    body = _json(answer)
    ignore = set(ALLOWED_MISMATCHES.get(example.name, {}))
    if "$expand=instanceView" in str(answer.request.url):
        ignore.discard("properties.licenseProfile")
    mismatches = shape_mismatches(example.responses[status]["body"], body, ignore=ignore)
    assert not mismatches, "\n".join(mismatches)
    expected = example.responses[status]["body"] or {}
    pairs = (zip(body["value"], expected["value"], strict=True) if "value" in expected
             else [(body, expected)])
    for ours, theirs in pairs:  # same machine and names: the example's very ids and names
        assert [ours[k] for k in ("id", "name") if k in theirs] == [
            _as_requested(example, theirs[k]) for k in ("id", "name") if k in theirs]
    state = (expected.get("properties") or {}).get("provisioningState")
    if state:  # Creating (201), Updating (Compute PATCH), Succeeded (a finished run)
        assert body["properties"]["provisioningState"] == state
    if spec_index().operation(example.operation_id).unavailable:
        return  # VirtualMachines_InstanceView: no schema was copied, shape only
    errors = spec_index().response_errors(example.operation_id, status, body)
    allowed = EXPECTED_INVALID_RESPONSES.get((example.name, status))
    # Only the spec bugs of test_openapi_support.py (ARG's data typed "object", Machines_Get
    # nulls without x-nullable), each error matching that exact pattern.
    assert all(allowed and re.search(allowed, e) for e in errors), "\n".join(errors)


async def _replay(api: Api, example: Example) -> list[tuple[int, httpx.Response]]:
    """(expected status, answer) for each request the example's replay makes."""
    operation = example.operation_id
    if operation.endswith("_CreateOrUpdate"):
        created = await _send(api, example)
        await _follow(api, example, created, 200)
        return [(201, created), (200, await _send(api, example))]  # re-PUT: a replace
    if operation in ACTIONS:  # the action API: 202, then the result
        accepted = await _send(api, example)
        assert "Location" in accepted.headers and "Azure-AsyncOperation" in accepted.headers
        return [(202, accepted), (200, await _follow(api, example, accepted, 200))]
    if operation.endswith("_Delete"):
        deleted = await _send(api, example)
        await _follow(api, example, deleted, 204)
        return [(202, deleted), (204, await _send(api, example))]  # nothing left to delete
    if operation == "Machines_Get":
        return [(200, await _send(api, example)),
                (200, await _send(api, example, **{"$expand": "instanceView"}))]
    if example.name == ARG + "ResourcesNextPageQuery.json":
        refused = await _send(api, example)
        assert refused.json()["error"]["details"][1]["code"] == "InvalidSkipToken"
        spec_index().validate_response("Resources", 400, refused.json())
        first = await _send(api, EXAMPLES[ARG + "ResourcesFirstPageQuery.json"])
        options = {"$skipToken": first.json()["$skipToken"]}
        return [(200, await _send(api, example, example.request_body | {"options": options}))]
    return [(200, await _send(api, example))]


def test_every_example_is_replayed_or_listed_as_not_emulated() -> None:
    storage = {name for name in EXAMPLES if name.startswith(STORAGE_EXAMPLES)}
    assert {e.name for e in IN_SCOPE} | set(NOT_EMULATED) | storage == set(EXAMPLES)
    assert {e.operation_id for e in IN_SCOPE} == {
        "VirtualMachineRunCommands_CreateOrUpdate", "VirtualMachineRunCommands_Update",
        "VirtualMachineRunCommands_Delete", "VirtualMachineRunCommands_GetByVirtualMachine",
        "VirtualMachineRunCommands_ListByVirtualMachine", "VirtualMachines_InstanceView",
        "Machines_Get", "MachineRunCommands_CreateOrUpdate", "MachineRunCommands_Update",
        "MachineRunCommands_Delete", "MachineRunCommands_Get", "MachineRunCommands_List",
        "Resources", "VirtualMachines_RunCommand", "VirtualMachineRunCommands_List",
        "VirtualMachineRunCommands_Get", "VirtualMachineScaleSetVMs_RunCommand",
        "VirtualMachineScaleSetVMRunCommands_CreateOrUpdate",
        "VirtualMachineScaleSetVMRunCommands_Update", "VirtualMachineScaleSetVMRunCommands_Delete",
        "VirtualMachineScaleSetVMRunCommands_Get", "VirtualMachineScaleSetVMRunCommands_List"}


@pytest.mark.parametrize("example", IN_SCOPE, ids=lambda e: e.name)
async def test_example_replays_against_the_sandbox(example: Example, tmp_path: Path) -> None:
    async with sandbox_api(_fleet(example), tmp_path) as api:
        await _seed(api, example)
        answers = await _replay(api, example)
        if example.request_body is not None and example.name not in REFUSED_REQUESTS:
            assert answers[0][1].status_code != 400, "an example request body was refused"
        for status, answer in answers:
            _check_answer(example, status, answer)
            if (status, example.operation_id.endswith("_Delete")) in ((201, False), (202, True)):
                missing = [h for h in _lro_headers(example, status) if h not in answer.headers]
                assert not missing, f"LRO headers missing: {missing}"
                assert int(answer.headers.get("Retry-After", "1")) >= 1
        never = {s for (name, s) in NEVER_PRODUCED if name == example.name}
        assert {s for s, _ in answers} == set(example.responses) - never


async def test_a_failing_deployment_of_the_scale_set_example(tmp_path: Path) -> None:
    # The scale-set PUT example as it is: its output blob cannot be created here, and with
    # treatFailureAsDeploymentFailure the run's failure is the deployment's (BENT_REQUESTS).
    example = EXAMPLES[COMPUTE + "VirtualMachineScaleSetVMRunCommand_CreateOrUpdate.json"]
    async with sandbox_api(_fleet(example), tmp_path) as api:
        created = await _send(api, example, example.request_body)
        _check_answer(example, 201, created)
        deadline = time.monotonic() + 5
        while (result := await api.client.get(created.headers["Location"])).status_code == 202:
            assert time.monotonic() < deadline, "the operation did not end within 5 s"
            await asyncio.sleep(0.05)
        assert result.status_code == 409, result.text
        assert "failed to create the output blob" in result.json()["error"]["message"]
        spec_index().validate_response(example.operation_id, 409, result.json())
        answer = await api.client.get(f"{_machine_path(example)}/runCommands/myRunCommand",
                                      params={"api-version": "2025-04-01",
                                              "$expand": "instanceView"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["properties"]["provisioningState"] == "Failed"
        spec_index().validate_response("VirtualMachineScaleSetVMRunCommands_Get", 200,
                                       answer.json())


async def test_operations_the_sandbox_does_not_serve_are_404_invalid_resource_type(
        tmp_path: Path) -> None:
    # What ARM answers for a resource type it does not know, so an SDK fails as it would.
    fleet = make_fleet({"name": "vm", "kind": "vm", "os": "linux"})
    sub = fleet.machines[0].subscription
    unserved = [f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/"
                "availabilitySets/set-1",
                f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/"
                "virtualMachines/vm/extensions/CustomScript",
                *(spec_index().request_path(EXAMPLES[name]) for name in sorted(NOT_EMULATED))]
    async with sandbox_api(fleet, tmp_path) as api:
        for path in unserved:
            separator = "&" if "?" in path else "?"
            answer = await api.client.get(f"{path}{separator}api-version=2025-04-01")
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error"]["code"] == "InvalidResourceType", path


# Error answers: (example, its parameters changed, its body replaced, status, error code).
ERRORS = [
    (COMPUTE + "VirtualMachineRunCommand_Get.json", {}, None, 404, "ResourceNotFound"),
    (ARC + "runCommand/RunCommands_Get.json", {}, None, 404, "ResourceNotFound"),
    (ARC + "machine/Machines_Get.json", {"machineName": "nope"}, None, 404, "ResourceNotFound"),
    (COMPUTE + "VirtualMachineRunCommand_List.json", {"api-version": "2099-01-01"}, None, 400,
     "InvalidApiVersionParameter"),
    (ARC + "runCommand/RunCommands_CreateOrUpdate.json", {"api-version": "2099-01-01"}, None,
     400, "InvalidApiVersionParameter"),
    (COMPUTE + "VirtualMachineRunCommand_CreateOrUpdate.json", {}, {"location": "westus",
     "properties": {"source": {"script": "echo hi", "commandId": "RunShellScript"}}}, 400,
     "InvalidParameterConflictingProperties"),
    (ARG + "ResourcesBasicQuery.json", {}, {"query": "Resources | frobnicate"}, 400,
     "BadRequest"),
]


@pytest.mark.parametrize(("name", "params", "body", "status", "code"), ERRORS,
                         ids=[f"{e[0].rsplit('/', 1)[1]}-{e[4]}" for e in ERRORS])
async def test_error_answers_validate_against_the_default_schema(
    name: str, params: dict[str, str], body: Any, status: int, code: str, tmp_path: Path
) -> None:
    example = EXAMPLES[name]  # the fleet has its machine, but no run command
    bent = Example(example.path, example.name, example.operation_id,
                   example.parameters | params, body or example.request_body, example.responses)
    async with sandbox_api(_fleet(example), tmp_path) as api:
        answer = await _send(api, bent)
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
        spec_index().validate_response(example.operation_id, status, answer.json())
