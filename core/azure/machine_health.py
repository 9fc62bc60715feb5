"""An Azure machine's agent health, asked of ARM one machine at a time (reference section 5).

Resource Graph lists machines with the health it knows (:mod:`core.inventory.azure_graph`
uses :func:`vm_power_health` and :func:`arc_health` on its rows); :func:`refine_health`
asks ARM about each machine directly for the agent's actual state, under the ARM read
budget the client keeps. The Compute and Arc backends call it before and during runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from core.azure.agent_upgrade import upgrade_commands
from core.azure.arm import ArmClient, ArmError
from core.azure.budget import Priority
from core.azure.local_blocking import local_blocks
from core.errors import FleetrunError
from core.model import Health, HealthStatus, Machine, MachineId, MachineKind, OsType, utc_now

MIN_ARC_AGENT = (1, 33)
"""Run commands are part of the Connected Machine agent from 1.33 on."""
NOT_CHECKED = "agent not checked yet"

_ARC_GONE = {"disconnected": "Disconnected", "error": "Error", "expired": "Expired",
             "awaitingconnection": "AwaitingConnection"}


class BadHealthAnswer(FleetrunError, ValueError):
    """An ARM body that says nothing of a machine's health; says what is missing."""


def text_value(value: object) -> str:
    """A value from an Azure body as text: strings stripped, anything else ''."""
    return value.strip() if isinstance(value, str) else ""


def error_text(code: object, message: object) -> str:
    """``CODE: message`` from an Azure error's parts, whichever are present."""
    return ": ".join(part for part in (text_value(code), text_value(message)) if part)


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


def arc_health(status: str, agent_version: str, error: str = "", *,
               agent_configuration: object = None, os_type: OsType | None = None) -> Health:
    """An Arc server's health from its ``status``, ``agentVersion``, first error and
    ``agentConfiguration`` (which can block Run Command on the machine: Blocked, with the
    ``azcmagent`` commands that lift it; ``os_type`` picks the handler and the commands'
    form, and without it the configuration is not judged). An agent too old for run
    commands gets the commands that upgrade it (:mod:`core.azure.agent_upgrade`)."""
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
                      version, now, upgrade_commands(os_type))
    blocks = local_blocks(agent_configuration, os_type) if os_type is not None else []
    if blocks:
        detail = "blocked on the machine: " + "; ".join(block.reason for block in blocks)
        return Health(HealthStatus.BLOCKED, detail, version, now,
                      tuple(block.unblock for block in blocks))
    return Health(HealthStatus.READY, "", version, now)


def os_type_of(value: object) -> OsType | None:
    """``linux``/``windows`` (any case) as an OS type; anything else None."""
    try:
        return OsType(text_value(value).lower())
    except ValueError:
        return None


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
    Arc servers: ``GET {id}`` for ``status``, ``agentVersion``, ``errorDetails`` and
    ``agentConfiguration`` (Run Command blocked on the machine). The reads
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
            body = await arm.get(machine.id, {"$expand": "instanceView"}, Priority.CHECK)
            return vm_health(body)
        return arc_health_of(await arm.get(machine.id, priority=Priority.CHECK), machine.os)
    except ArmError as error:
        return Health(HealthStatus.UNKNOWN, f"health check failed: {error}",
                      machine.health.agent_version, utc_now())
    except BadHealthAnswer as bad:
        return Health(HealthStatus.UNKNOWN, f"health check failed: {bad}",
                      machine.health.agent_version, utc_now())


def vm_health(body: object) -> Health:
    """A VM's health from ``GET {id}?$expand=instanceView`` (reference 5.2).

    Raises:
        BadHealthAnswer: The body has no instance view.
    """
    view = _dig(body, "properties", "instanceView")
    if not isinstance(view, dict):
        raise BadHealthAnswer("the VM's answer has no properties.instanceView")
    power = next(_statuses(view.get("statuses"), "PowerState/"), None)
    if power is None:
        return Health(HealthStatus.UNKNOWN, "power state not reported", checked_at=utc_now())
    code, display = power
    if code.lower() != "powerstate/running":
        return vm_power_health(code, display)
    agent = view.get("vmAgent")
    agent = agent if isinstance(agent, dict) else {}
    version = text_value(agent.get("vmAgentVersion")) or None
    statuses = agent.get("statuses")
    first = statuses[0] if isinstance(statuses, list) and statuses else None
    if not isinstance(first, dict):
        return Health(HealthStatus.NOT_READY, "the VM agent reports no status", version,
                      utc_now())
    shown, message = text_value(first.get("displayStatus")), text_value(first.get("message"))
    if shown.lower() == "ready":
        return Health(HealthStatus.READY, "", version, utc_now())
    if shown.lower() == "not ready":
        return Health(HealthStatus.NOT_READY, message or "VM agent Not Ready", version,
                      utc_now())
    detail = f"VM agent status {shown or 'not reported'}" + (f": {message}" if message else "")
    return Health(HealthStatus.UNKNOWN, detail, version, utc_now())


def arc_health_of(body: object, os_type: OsType | None = None) -> Health:
    """An Arc server's health from ``GET {id}`` (reference 5.1); ``os_type`` is the OS the
    fleet knows, for a body whose ``osType`` says none.

    Raises:
        BadHealthAnswer: The body has no properties.
    """
    properties = _dig(body, "properties")
    if not isinstance(properties, dict):
        raise BadHealthAnswer("the Arc machine's answer has no properties")
    errors = properties.get("errorDetails")
    first = errors[0] if isinstance(errors, list) and errors else {}
    first = first if isinstance(first, dict) else {}
    return arc_health(text_value(properties.get("status")),
                      text_value(properties.get("agentVersion")),
                      error_text(first.get("code"), first.get("message")),
                      agent_configuration=properties.get("agentConfiguration"),
                      os_type=os_type_of(properties.get("osType")) or os_type)


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
            code = text_value(status.get("code"))
            if code.lower().startswith(prefix.lower()):
                yield code, text_value(status.get("displayStatus"))
