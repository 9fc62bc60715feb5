"""Azure VMs and Arc servers from Azure Resource Graph, and their agents' health on demand.

:func:`query_machines` lists every VM and Arc-enabled server of the chosen subscriptions with
one KQL query (reference section 6.5), page by page, and takes their health from what the
graph knows: a VM's power state (never its agent's readiness, which Resource Graph does not
carry) and an Arc server's status and agent version. :func:`refine_health` asks ARM about
each machine directly (reference section 5) for the agent's actual state, under the ARM read
budget the client keeps.

Resource Graph has its own quota (reference 6.4): its calls are not charged to the ARM
budget, a 429 is waited out by the client (``Retry-After``), and when
``x-ms-user-quota-remaining`` reaches 0 the next page waits for
``x-ms-user-quota-resets-after`` instead of running into that 429.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import httpx

from core.azure.arm import ArmClient, ArmError, subscription_of
from core.errors import FleetrunError
from core.model import Health, HealthStatus, Machine, MachineId, MachineKind, OsType, utc_now

log = logging.getLogger(__name__)

GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
PAGE_SIZE = 1000
"""Rows per page: Resource Graph's maximum ``$top``."""
SUBSCRIPTION_BATCH = 300
"""Subscriptions per query; Resource Graph's guidance is to stay under about 300."""
MIN_ARC_AGENT = (1, 33)
"""Run commands are part of the Connected Machine agent from 1.33 on."""
QUOTA_RESOLUTION = 1.0
"""Seconds to wait when the quota is spent and ``resets-after`` reads 00:00:00 (it counts
whole seconds, so less than one is left)."""

VM_TYPE = "microsoft.compute/virtualmachines"
ARC_TYPE = "microsoft.hybridcompute/machines"
NOT_CHECKED = "agent not checked yet"

MACHINES_QUERY = f"""Resources
| where type in~ ('{VM_TYPE}', '{ARC_TYPE}')
| extend osType = tolower(iff(type =~ '{VM_TYPE}',
                              tostring(properties.storageProfile.osDisk.osType),
                              tostring(properties.osType))),
         powerState = tostring(properties.extended.instanceView.powerState.code),
         arcStatus = tostring(properties.status),
         agentVersion = tostring(properties.agentVersion),
         errorCode = tostring(properties.errorDetails[0].code),
         errorMessage = tostring(properties.errorDetails[0].message)
| project id, name, type, location, subscriptionId, tags, osType, powerState, arcStatus,
          agentVersion, errorCode, errorMessage
| order by id asc"""
"""One query for both machine kinds; every column the mapping below reads, nothing more."""

_HMS = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})(?:\.\d+)?\s*$")
_ARC_GONE = {"disconnected": "Disconnected", "error": "Error", "expired": "Expired",
             "awaitingconnection": "AwaitingConnection"}


class BadRow(FleetrunError, ValueError):
    """A Resource Graph row or ARM body that cannot be a machine; says what is wrong."""


# ----------------------------------------------------------------------------- listing


async def query_machines(arm: ArmClient, subscriptions: Sequence[str]) -> list[Machine]:
    """Every Azure VM and Arc-enabled server in ``subscriptions``, with graph-level health.

    Args:
        arm: The ARM client (its base URL may be the sandbox's).
        subscriptions: Subscription ids; empty means every subscription the credential sees.

    Returns:
        The machines in id order, each once. Rows that cannot be machines (no id, an unknown
        OS) are left out with a logged warning naming the resource.

    Raises:
        ArmError: Resource Graph refused the query or answered something unreadable.
    """
    batches: list[list[str] | None] = [None]
    if subscriptions:
        wanted = list(subscriptions)
        batches = [wanted[i:i + SUBSCRIPTION_BATCH]
                   for i in range(0, len(wanted), SUBSCRIPTION_BATCH)]
    machines: dict[str, Machine] = {}
    async for row in _rows(arm, batches):
        try:
            machine = machine_from_row(row)
        except BadRow as bad:
            log.warning("Resource Graph: skipping %s", bad)
            continue
        # A resource can show up twice while the graph catches up with a move: keep one.
        machines.setdefault(machine.id.lower(), machine)
    return sorted(machines.values(), key=lambda m: m.id.lower())


async def _rows(arm: ArmClient, batches: list[list[str] | None]) -> AsyncIterator[Any]:
    """The rows of every page of :data:`MACHINES_QUERY` for each batch, unchecked."""
    page, hold = 0, 0.0
    for subscriptions in batches:
        skip_token: str | None = None
        while True:
            if hold > 0:
                log.info("Resource Graph quota spent; waiting %.1f s before query %d",
                         hold, page + 1)
                await asyncio.sleep(hold)
            options: dict[str, Any] = {"$top": PAGE_SIZE, "resultFormat": "objectArray"}
            if skip_token:
                options["$skipToken"] = skip_token
            body: dict[str, Any] = {"query": MACHINES_QUERY, "options": options}
            if subscriptions:
                body["subscriptions"] = subscriptions
            # A query changes nothing: safe to resend after a 5xx or a dropped connection.
            response = await arm.request("POST", GRAPH_PATH, json_body=body, budgeted=False,
                                         idempotent=True)
            page += 1
            hold = quota_wait(response.headers)  # only slept if another query follows
            data, skip_token = _page(response, page)
            for row in data:
                yield row
            if not skip_token:
                break


def _page(response: httpx.Response, number: int) -> tuple[list[Any], str | None]:
    target = f"POST {GRAPH_PATH} (page {number})"
    try:
        body = response.json()
    except ValueError:
        raise ArmError(response.status_code, "InvalidResponse",
                       "Resource Graph answered something that is not JSON",
                       target=target) from None
    if not isinstance(body, dict):
        raise ArmError(response.status_code, "InvalidResponse",
                       "Resource Graph's answer is not a QueryResponse object", target=target)
    data = body.get("data")
    if isinstance(data, dict):  # the "table" format, should a server ignore resultFormat
        data = _table_rows(data)
    if not isinstance(data, list):
        raise ArmError(response.status_code, "InvalidResponse",
                       "Resource Graph's answer has no data rows", target=target)
    if str(body.get("resultTruncated", "false")).lower() == "true":
        log.warning("Resource Graph truncated the machine list at %d rows", len(data))
    token = body.get("$skipToken")
    return data, token if isinstance(token, str) and token else None


def _table_rows(data: Mapping[str, Any]) -> list[Any] | None:
    columns, rows = data.get("columns"), data.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        return None
    names = [c.get("name") if isinstance(c, dict) else None for c in columns]
    return [dict(zip(names, row, strict=False)) if isinstance(row, list) else row
            for row in rows]


def quota_wait(headers: Mapping[str, str]) -> float:
    """Seconds to hold the next query: ``resets-after`` once ``quota-remaining`` is 0."""
    remaining = headers.get("x-ms-user-quota-remaining")
    try:
        if remaining is None or int(remaining) > 0:
            return 0.0
    except ValueError:
        return 0.0
    found = _HMS.match(headers.get("x-ms-user-quota-resets-after", ""))
    if found is None:
        return QUOTA_RESOLUTION
    hours, minutes, seconds = (int(g) for g in found.groups())
    return float(hours * 3600 + minutes * 60 + seconds) or QUOTA_RESOLUTION


# ----------------------------------------------------------------------------- rows


def machine_from_row(row: object) -> Machine:
    """A machine from one row of :data:`MACHINES_QUERY`.

    Raises:
        BadRow: The row has no id, an unknown type or OS; the message names the resource.
    """
    if not isinstance(row, dict):
        raise BadRow(f"a row that is not an object: {type(row).__name__}")
    resource_id = _text(row.get("id"))
    name = _text(row.get("name")) or resource_id.rstrip("/").rpartition("/")[2]
    if not resource_id.startswith("/subscriptions/"):
        shown = f"resource {name!r}" if name else "a resource"
        raise BadRow(f"{shown}: no ARM resource id (id = {row.get('id')!r})")
    kind = {VM_TYPE: MachineKind.VM, ARC_TYPE: MachineKind.ARC}.get(
        _text(row.get("type")).lower())
    if kind is None:
        raise BadRow(f"{resource_id}: type {row.get('type')!r} is neither a VM ({VM_TYPE}) "
                     f"nor an Arc server ({ARC_TYPE})")
    os_name = _text(row.get("osType")).lower()
    if os_name not in (OsType.LINUX, OsType.WINDOWS):
        raise BadRow(f"{resource_id}: OS type {row.get('osType')!r} is not allowed; "
                     "allowed: linux, windows")
    if kind is MachineKind.VM:
        health = vm_power_health(_text(row.get("powerState")))
    else:
        health = arc_health(_text(row.get("arcStatus")), _text(row.get("agentVersion")),
                            _error_text(row.get("errorCode"), row.get("errorMessage")))
    return Machine(
        id=resource_id,
        name=name,
        kind=kind,
        os=OsType(os_name),
        location=_text(row.get("location")),
        subscription=_text(row.get("subscriptionId")) or subscription_of(resource_id),
        tags=_tags(row.get("tags")),
        health=health,
    )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _tags(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else "" if v is None else str(v)
            for k, v in value.items()}


def _error_text(code: object, message: object) -> str:
    return ": ".join(part for part in (_text(code), _text(message)) if part)


# ----------------------------------------------------------------------------- health


def vm_power_health(power_code: str, display: str = "") -> Health:
    """A VM's health from its power state alone (``PowerState/running``, ...).

    Running says nothing of the agent: Unknown until :func:`refine_health` asks. Any other
    state cannot take a run command: Deallocated (the vocabulary's word for "not running").
    """
    state = power_code.partition("/")[2].lower() if "/" in power_code else power_code.lower()
    if state == "running":
        return Health(HealthStatus.UNKNOWN, NOT_CHECKED)
    if not state:
        return Health(HealthStatus.UNKNOWN, "power state not reported", checked_at=utc_now())
    return Health(HealthStatus.DEALLOCATED, display or f"VM {state}", checked_at=utc_now())


def arc_health(status: str, agent_version: str, error: str = "") -> Health:
    """An Arc server's health from its ``status``, ``agentVersion`` and first error."""
    now = utc_now()
    version = agent_version or None
    gone = _ARC_GONE.get(status.lower())
    if gone is not None:
        detail = f"Arc status {gone}" + (f": {error}" if error else "")
        return Health(HealthStatus.DISCONNECTED, detail, version, now)
    if status.lower() != "connected":
        shown = repr(status) if status else "not reported"
        return Health(HealthStatus.UNKNOWN, f"Arc status {shown}", version, now)
    parsed = agent_version_tuple(agent_version)
    if not parsed:
        return Health(HealthStatus.UNKNOWN, "Connected; agent version not reported", version,
                      now)
    if parsed < MIN_ARC_AGENT:
        floor = ".".join(map(str, MIN_ARC_AGENT))
        return Health(HealthStatus.AGENT_TOO_OLD,
                      f"agent {agent_version} is older than {floor} (no run commands)",
                      version, now)
    return Health(HealthStatus.READY, "", version, now)


def agent_version_tuple(version: str) -> tuple[int, ...]:
    """``1.45.02800.0`` as numbers, up to the first part that is not one."""
    parts: list[int] = []
    for piece in version.strip().split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


async def refine_health(
    arm: ArmClient, machines: Sequence[Machine], *, concurrency: int = 16
) -> dict[MachineId, Health]:
    """Each VM's and Arc server's health, asked of ARM one machine at a time.

    VMs: ``GET {id}?$expand=instanceView`` for the power state and the VM agent's status.
    Arc servers: ``GET {id}`` for ``status``, ``agentVersion`` and ``errorDetails``. The reads
    go through the client's ARM budget, at most ``concurrency`` at once. Machines of other
    kinds are left out of the answer.

    Returns:
        Health by machine id. A machine whose GET failed is Unknown, with the error as detail.

    Raises:
        ValueError: ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency: {concurrency} is not allowed; allowed: 1 or more")
    gate = asyncio.Semaphore(concurrency)

    async def one(machine: Machine) -> tuple[MachineId, Health]:
        async with gate:
            return machine.id, await _machine_health(arm, machine)

    azure = [m for m in machines if m.kind in (MachineKind.VM, MachineKind.ARC)]
    return dict(await asyncio.gather(*(one(m) for m in azure)))


async def _machine_health(arm: ArmClient, machine: Machine) -> Health:
    if not machine.id.startswith("/subscriptions/"):
        # Anything else would be sent as a URL of its own, bearer token and all.
        return Health(HealthStatus.UNKNOWN, f"not an ARM resource id: {machine.id!r}",
                      machine.health.agent_version, utc_now())
    try:
        if machine.kind is MachineKind.VM:
            body = await arm.get(machine.id, {"$expand": "instanceView"})
            return vm_health(body)
        return arc_health_of(await arm.get(machine.id))
    except ArmError as error:
        return Health(HealthStatus.UNKNOWN, f"health check failed: {error}",
                      machine.health.agent_version, utc_now())
    except BadRow as bad:
        return Health(HealthStatus.UNKNOWN, f"health check failed: {bad}",
                      machine.health.agent_version, utc_now())


def vm_health(body: object) -> Health:
    """A VM's health from ``GET {id}?$expand=instanceView`` (reference 5.2).

    Raises:
        BadRow: The body has no instance view.
    """
    view = _dig(body, "properties", "instanceView")
    if not isinstance(view, dict):
        raise BadRow("the VM's answer has no properties.instanceView")
    power = next(_statuses(view.get("statuses"), "PowerState/"), None)
    if power is None:
        return Health(HealthStatus.UNKNOWN, "power state not reported", checked_at=utc_now())
    code, display = power
    if code.lower() != "powerstate/running":
        return vm_power_health(code, display)
    agent = view.get("vmAgent")
    agent = agent if isinstance(agent, dict) else {}
    version = _text(agent.get("vmAgentVersion")) or None
    statuses = agent.get("statuses")
    first = statuses[0] if isinstance(statuses, list) and statuses else None
    if not isinstance(first, dict):
        return Health(HealthStatus.NOT_READY, "the VM agent reports no status", version,
                      utc_now())
    shown, message = _text(first.get("displayStatus")), _text(first.get("message"))
    if shown.lower() == "ready":
        return Health(HealthStatus.READY, "", version, utc_now())
    if shown.lower() == "not ready":
        return Health(HealthStatus.NOT_READY, message or "VM agent Not Ready", version,
                      utc_now())
    detail = f"VM agent status {shown or 'not reported'}" + (f": {message}" if message else "")
    return Health(HealthStatus.UNKNOWN, detail, version, utc_now())


def arc_health_of(body: object) -> Health:
    """An Arc server's health from ``GET {id}`` (reference 5.1).

    Raises:
        BadRow: The body has no properties.
    """
    properties = _dig(body, "properties")
    if not isinstance(properties, dict):
        raise BadRow("the Arc machine's answer has no properties")
    errors = properties.get("errorDetails")
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}
    return arc_health(_text(properties.get("status")), _text(properties.get("agentVersion")),
                      _error_text(first.get("code"), first.get("message")))


def _dig(value: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _statuses(statuses: object, prefix: str) -> Iterator[tuple[str, str]]:
    """``(code, displayStatus)`` of the instance-view statuses whose code has ``prefix``."""
    if not isinstance(statuses, list):
        return
    for status in statuses:
        if isinstance(status, dict):
            code = _text(status.get("code"))
            if code.lower().startswith(prefix.lower()):
                yield code, _text(status.get("displayStatus"))
