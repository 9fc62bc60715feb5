"""Permissions checked before a run (issue 20 item 1), on the sandbox's principals.

The Compute and Arc backends' health check reads ARM's permissions once per resource group
per session: a Reader sees the fleet NotPermitted (the missing action and role named) and a
run sends nothing; an administrator of one resource group runs there only; a custom role
with only the VM action goes straight to the action API; a 403 that comes anyway is
Skipped "not permitted", not Failed, and spends no error budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from core.azure.arm import ArmClient, ArmError
from core.azure.permission_check import PermissionCheck, permitted_health
from core.azure.permissions import (
    ARC_ROLE,
    ARC_RUN,
    VM_MANAGED_RUN,
    VM_ROLE,
    Access,
    MachineVerdict,
    permission_line,
)
from core.backends.compute import action_only_reason
from core.fanout import FanoutOptions
from core.fleet.routing import Backends
from core.journal_store import Journal
from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineKind,
    Run,
    RunApi,
    RunState,
)
from core.runner import RunSession
from core.validate import Limit
from tests.azure.sandboxed import SUB, AzureBed, azure_bed, fleet_of, machine_of

OPS_RG = "rg-ops"
SIMULATED = {"executor": "simulated", "simulate": {"duration": 0, "lines": 1}}
SUB_SCOPE = f"/subscriptions/{SUB}"
PRINCIPALS = [
    {"name": "reader", "token": "reader-token-0123456789abcdef",
     "roles": [{"role": "Reader", "scope": SUB_SCOPE}]},
    {"name": "ops-admin", "token": "ops-admin-token-0123456789abcdef",
     "roles": [{"role": "Reader", "scope": SUB_SCOPE},
               {"role": ARC_ROLE, "scope": f"{SUB_SCOPE}/resourceGroups/{OPS_RG}"}]},
    {"name": "vm-actor", "token": "vm-actor-token-0123456789abcdef",
     "roles": [{"role": "Reader", "scope": SUB_SCOPE},
               {"role": "vm action runner", "scope": SUB_SCOPE}]},
]
ROLES = [{"name": "vm action runner",
          "actions": ["Microsoft.Compute/virtualMachines/runCommand/action"]}]


def _fleet(**faults: Any) -> Any:
    return fleet_of(
        {"name": "arc1", "kind": "arc", "os": "linux", **SIMULATED},
        {"name": "arc2", "kind": "arc", "os": "linux", "resource_group": OPS_RG, **SIMULATED},
        {"name": "vm1", "kind": "vm", "os": "linux", **SIMULATED},
        principals=PRINCIPALS, roles=ROLES, **faults)


def _machines() -> list[Machine]:
    return [machine_of("arc1", "arc"), machine_of("arc2", "arc", group=OPS_RG),
            machine_of("vm1")]


def _backends(bed: AzureBed) -> Backends:
    return Backends({MachineKind.VM: bed.backend("vm"), MachineKind.ARC: bed.backend("arc")})


async def _run(bed: AzureBed, machines: Sequence[Machine], tmp_path: Path,
               api: RunApi = RunApi.AUTO, max_errors: Limit | None = None
               ) -> tuple[RunSession, Run]:
    command = Command(CommandId.SHELL, "echo ran", timeout=30, api=api)
    session = RunSession.plan(
        [(m, command) for m in machines], bed.backend_for,
        options=FanoutOptions(grace=1.0, max_errors=max_errors),
        journal=Journal(tmp_path / "journal.sqlite3"), runs_root=tmp_path / "runs")
    run = await asyncio.wait_for(session.execute(), timeout=60)
    return session, run


def _sent(log: list[str], method: str, fragment: str = "") -> list[str]:
    return [line for line in log if line.startswith(method + " ") and fragment in line]


def _by_name(run: Run) -> dict[str, Any]:
    return {mr.machine.name: mr for mr in run.machines.values()}


async def test_a_reader_sees_the_fleet_not_permitted_and_a_run_sends_nothing(
        tmp_path: Path) -> None:
    log: list[str] = []
    async with azure_bed(_fleet(), tmp_path, caller="reader", arm_log=log) as bed:
        checked = await _backends(bed).refresh_health(_machines(), before_run=True)
        health = {m.name: m.health for m in checked}
        assert {h.status for h in health.values()} == {HealthStatus.NOT_PERMITTED}
        assert health["arc1"].detail == f"may only read: needs {ARC_RUN} ({ARC_ROLE})"
        assert health["vm1"].detail == f"may only read: needs {VM_MANAGED_RUN} ({VM_ROLE})"
        assert permission_line(checked) == (
            f"you can run on 0 of 3 machines; 2 need `{ARC_RUN}` ({ARC_ROLE}); "
            f"1 needs `{VM_MANAGED_RUN}` ({VM_ROLE})")
        _, run = await _run(bed, checked, tmp_path)
        assert {mr.state for mr in run.machines.values()} == {RunState.SKIPPED}
        assert f"needs {ARC_RUN}" in str(_by_name(run)["arc1"].error)
        assert _sent(log, "PUT") == [] and _sent(log, "POST") == []


async def test_an_administrator_of_one_resource_group_runs_there_only(tmp_path: Path) -> None:
    async with azure_bed(_fleet(), tmp_path, caller="ops-admin") as bed:
        checked = await _backends(bed).refresh_health(_machines(), before_run=True)
        # Most needed first; as many: by action name.
        assert permission_line(checked) == (
            f"you can run on 1 of 3 machines; 1 needs `{VM_MANAGED_RUN}` ({VM_ROLE}); "
            f"1 needs `{ARC_RUN}` ({ARC_ROLE})")
        _, run = await _run(bed, checked, tmp_path)
        found = _by_name(run)
        assert found["arc2"].state is RunState.SUCCEEDED, found["arc2"].error
        for name in ("arc1", "vm1"):
            assert found[name].state is RunState.SKIPPED
            assert "NotPermitted (may only read: needs" in str(found[name].error)


async def test_only_the_vm_action_goes_straight_to_the_action_api_under_auto(
        tmp_path: Path) -> None:
    log: list[str] = []
    async with azure_bed(_fleet(), tmp_path, caller="vm-actor", arm_log=log) as bed:
        vm = (await _backends(bed).refresh_health([machine_of("vm1")], before_run=True))[0]
        assert vm.health.status is not HealthStatus.NOT_PERMITTED, vm.health
        _, run = await _run(bed, [vm], tmp_path)
        result = _by_name(run)["vm1"]
        assert result.state is RunState.SUCCEEDED, result.error
        assert action_only_reason(VM_MANAGED_RUN) in str(result.error)
        assert _sent(log, "PUT") == []
        assert len(_sent(log, "POST", "/runCommand")) == 1

        _, managed = await _run(bed, [vm], tmp_path, api=RunApi.MANAGED)
        refused = _by_name(managed)["vm1"]
        assert refused.state is RunState.SKIPPED
        assert f"NotPermitted (needs {VM_MANAGED_RUN}" in str(refused.error)
        assert _sent(log, "PUT") == []


async def test_a_403_after_the_check_is_skipped_not_permitted_and_spends_no_budget(
        tmp_path: Path) -> None:
    # The check said Owner may run; the PUT is refused anyway, as after a grant revoked
    # between the check and the run.
    fleet = fleet_of(
        {"name": "arc1", "kind": "arc", "os": "linux", **SIMULATED,
         "faults": {"managed_forbidden": True}},
        {"name": "arc3", "kind": "arc", "os": "linux", **SIMULATED})
    async with azure_bed(fleet, tmp_path) as bed:
        machines = [machine_of("arc1", "arc"), machine_of("arc3", "arc")]
        checked = await _backends(bed).refresh_health(machines, before_run=True)
        assert permission_line(checked) is None
        session, run = await _run(bed, checked, tmp_path, max_errors=Limit(1))
        found = _by_name(run)
        assert found["arc1"].state is RunState.SKIPPED
        assert str(found["arc1"].error).startswith(
            f"not permitted: needs `{ARC_RUN}` ({ARC_ROLE}) at /subscriptions/")
        assert found["arc3"].state is RunState.SUCCEEDED
        assert session.fanout.failures == 0 and not session.fanout.stop_reason


async def test_permissions_are_read_once_per_resource_group_per_session(
        tmp_path: Path) -> None:
    log: list[str] = []
    async with azure_bed(_fleet(), tmp_path, caller="ops-admin", arm_log=log) as bed:
        backends = _backends(bed)
        for _ in range(3):
            await backends.refresh_health(_machines())
        reads = _sent(log, "GET", "/providers/Microsoft.Authorization/permissions")
        assert sorted(reads) == sorted(
            f"GET {SUB_SCOPE}/resourcegroups/{group}/providers/Microsoft.Authorization/"
            "permissions" for group in ("rg", OPS_RG))


def test_an_unhealthy_machine_keeps_its_state_and_says_the_permission_is_missing() -> None:
    vm = machine_of("vm1")
    denied = MachineVerdict(vm.id, Access.READ_ONLY, missing=VM_MANAGED_RUN, role=VM_ROLE)
    gone = Health(HealthStatus.NOT_READY, "VM agent Not Ready")
    assert permitted_health(gone, denied) == Health(
        HealthStatus.NOT_READY,
        f"VM agent Not Ready; also not permitted: needs {VM_MANAGED_RUN} ({VM_ROLE})")
    ready = Health(HealthStatus.READY, "", "2.9")
    assert permitted_health(ready, denied).status is HealthStatus.NOT_PERMITTED
    assert permitted_health(ready, MachineVerdict(vm.id, Access.UNKNOWN)) == ready


class _RefusingArm:
    """An ARM client whose permissions read is refused, as for a caller who may not read it."""

    def __init__(self) -> None:
        self.reads = 0

    async def get(self, path: str, params: object = None, priority: object = None) -> object:
        self.reads += 1
        raise ArmError(403, "AuthorizationFailed", "does not have authorization to perform "
                       "action 'Microsoft.Authorization/permissions/read'")


async def test_a_refused_permissions_read_leaves_the_verdict_unknown_and_is_not_repeated(
) -> None:
    arm = _RefusingArm()
    check = PermissionCheck(cast(ArmClient, arm))
    for _ in range(2):
        verdicts = await check.verdicts([machine_of("vm1"), machine_of("arc1", "arc")])
        assert {v.access for v in verdicts.values()} == {Access.UNKNOWN}
    assert arm.reads == 1
