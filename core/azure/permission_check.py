"""Who may run where, asked of ARM: one permissions read per resource group, per session.

The Compute and Arc backends' health check asks, for each resource group holding machines
being checked, ``GET {resource group}/providers/Microsoft.Authorization/permissions``: a
resource group's answer includes what is inherited from the subscription, while a
subscription's answer does not see grants on a resource group. The answers are kept for
the session (the fleet screen re-checks health often), and a read two backends need at once
is made once. :mod:`core.azure.permissions` reads them (pure); :func:`permitted_health` puts
the verdict into the machine's health.

A read that fails (403 on the read itself, the network) leaves its machines' verdicts
Unknown: their health is unchanged and the run will tell. It never fails a health check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from core.azure.arm import ArmClient, ArmError
from core.azure.budget import Priority
from core.azure.permissions import (
    API_VERSION,
    Access,
    BadPermissionsAnswer,
    MachineVerdict,
    Permissions,
    machine_verdict,
    parse_permissions,
    permissions_path,
    resource_group_scope,
)
from core.model import Health, HealthStatus, Machine, MachineId, MachineKind, utc_now

log = logging.getLogger(__name__)

_REFUSED = frozenset({401, 403, 404})
"""A read refused for good (the caller may not read its permissions): not asked again."""


class PermissionCheck:
    """The caller's permissions by resource group, read once each for the session.

    Args:
        arm: The session's ARM client: each read is budgeted and retried like any other.
    """

    def __init__(self, arm: ArmClient) -> None:
        self.arm = arm
        self._answers: dict[str, asyncio.Future[Permissions | None]] = {}
        self.reads = 0
        """Permissions reads sent this session (what a test counts)."""

    async def verdicts(self, machines: Iterable[Machine]) -> dict[MachineId, MachineVerdict]:
        """Each Azure machine's verdict; each of their resource groups read at most once."""
        azure = [m for m in machines if m.kind in (MachineKind.VM, MachineKind.ARC)]
        scopes = {resource_group_scope(m.id) for m in azure} - {""}
        await asyncio.gather(*(self._answer(scope) for scope in scopes))
        return {m.id: self.known(m) for m in azure}

    def known(self, machine: Machine) -> MachineVerdict:
        """The verdict from what was read already (Unknown where nothing was): no I/O."""
        future = self._answers.get(resource_group_scope(machine.id))
        answer = future.result() if future is not None and future.done() else None
        if machine.kind in (MachineKind.VM, MachineKind.ARC) and answer is None:
            return MachineVerdict(machine.id, Access.UNKNOWN)
        return machine_verdict(machine, answer)

    def _answer(self, scope: str) -> asyncio.Future[Permissions | None]:
        future = self._answers.get(scope)
        if future is None:
            future = self._answers[scope] = asyncio.ensure_future(self._read(scope))
        return future

    async def _read(self, scope: str) -> Permissions | None:
        path = permissions_path(scope).partition("?")[0]
        self.reads += 1
        try:
            body = await self.arm.get(path, {"api-version": API_VERSION}, Priority.CHECK)
            return parse_permissions(body, scope)
        except (ArmError, BadPermissionsAnswer) as error:
            log.warning("permissions of %s not read (runs there are not checked first): %s",
                        scope, error)
            if not (isinstance(error, ArmError) and error.status in _REFUSED):
                # Passing (the network, a 5xx): the next health check asks again.
                self._answers.pop(scope, None)
            return None


def permitted_health(health: Health, verdict: MachineVerdict) -> Health:
    """``health`` with the permission verdict in it.

    A caller that may not run makes a runnable machine NotPermitted, the verdict's reason
    (the missing action and the role) its detail; an unhealthy machine keeps its state
    (that must be fixed anyway), its detail saying the caller lacks the action as well. An
    Unknown verdict (not read) leaves the health as it is.
    """
    if verdict.access is Access.UNKNOWN:
        return health
    if verdict.access is Access.RUN:
        if health.status is HealthStatus.NOT_PERMITTED:
            # Said by an earlier session's caller; this one may run: the run will tell.
            return Health(HealthStatus.UNKNOWN, "agent not checked yet", health.agent_version)
        return health
    if health.runnable:
        return Health(HealthStatus.NOT_PERMITTED, verdict.reason, health.agent_version,
                      health.checked_at or utc_now())
    if health.status is HealthStatus.NOT_PERMITTED:
        return Health(health.status, verdict.reason, health.agent_version,
                      health.checked_at or utc_now())
    also = f"also not permitted: needs {verdict.missing} ({verdict.role})"
    detail = f"{health.detail}; {also}" if health.detail else also
    return Health(health.status, detail, health.agent_version, health.checked_at,
                  health.remedy)
