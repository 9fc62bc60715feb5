"""``fleetrun cleanup`` in the core: fleetrun's leftover run commands listed and deleted
across VMs and Arc servers through the ARM client, the ones still needed kept."""

from __future__ import annotations

from pathlib import Path

from core.azure.run_commands import put_body, run_command_path
from core.backends.base import Backend
from core.cleanup import Outcome, clean_up, remove_ended_runs, runs_to_keep
from core.events import Finished
from core.journal_store import RunRecord
from core.model import Command, CommandId, Machine, RunState, utc_now
from tests.azure.sandboxed import AzureBed, azure_bed, fleet_of, machine_of
from tests.azure.test_faults import linux
from tests.azure.test_honest_states import SHORT_RETRY, leftovers


async def leave_behind(bed: AzureBed, machine: Machine, run_id: str) -> None:
    """Run a quick command and keep its run command (as a crash before the DELETE would)."""
    events = [e async for e in bed.backend_for(machine).run(
        machine, Command(CommandId.SHELL, "echo hi", timeout=30), run_id=run_id)]
    assert isinstance(events[-1], Finished) and events[-1].state is RunState.SUCCEEDED


async def put_only(bed: AzureBed, machine: Machine, run_id: str) -> None:
    """Create a run command and leave it: its script runs on with nobody following it."""
    command = Command(CommandId.SHELL, "sleep 60", timeout=120)
    await bed.arm.request("PUT", run_command_path(machine.id, run_id),
                          json_body=put_body(command, machine.location, None))


async def test_cleanup_deletes_leftovers_and_keeps_what_is_needed(tmp_path: Path) -> None:
    fleet = fleet_of(linux("vm-1"), linux("vm-2"), linux("arc-1", "arc"),
                     linux("vm-stuck"), linux("sticky", delete_errors=3))
    async with azure_bed(fleet, tmp_path, delete_finished=False, retry=SHORT_RETRY) as bed:
        machines = [machine_of("vm-1"), machine_of("vm-2"), machine_of("arc-1", "arc"),
                    machine_of("vm-stuck"), machine_of("sticky")]
        vm1, vm2, arc1, stuck, sticky = machines
        for machine in (vm1, arc1, sticky):
            await leave_behind(bed, machine, "aaaa0001")
        await leave_behind(bed, vm1, "aaaa0002")
        await leave_behind(bed, vm2, "bbbb0001")  # of a run the journal can still attach
        await put_only(bed, stuck, "cccc0001")
        assert leftovers(bed) == {
            "vm-1": ["fleetrun-aaaa0001", "fleetrun-aaaa0002"], "vm-2": ["fleetrun-bbbb0001"],
            "arc-1": ["fleetrun-aaaa0001"], "vm-stuck": ["fleetrun-cccc0001"],
            "sticky": ["fleetrun-aaaa0001"]}
        keep = {"bbbb0001": "run bbbb0001 can still be attached"}

        def backend_for(machine: Machine) -> Backend:
            return bed.backend_for(machine)

        seen: list[str] = []
        dry = await clean_up(machines, backend_for, dry_run=True, keep_runs=keep,
                             on_machine=lambda m, _items: seen.append(m.name))
        assert sorted(seen) == sorted(m.name for m in machines)
        assert dry.counts() == {"deleted": 0, "would delete": 4, "kept": 2, "failed": 0}
        assert len(leftovers(bed)) == 5  # a dry run deletes nothing

        report = await clean_up(machines, backend_for, keep_runs=keep)
        assert report.machines == 5 and not report.unlisted
        assert report.counts() == {"deleted": 4, "would delete": 0, "kept": 2, "failed": 0}
        kept = {(i.machine.name, i.found.name): i.reason for i in report.items
                if i.outcome is Outcome.KEPT}
        assert "can still be attached" in kept[("vm-2", "fleetrun-bbbb0001")]
        assert "deleting it would stop its script" in kept[("vm-stuck", "fleetrun-cccc0001")]
        assert leftovers(bed) == {"vm-2": ["fleetrun-bbbb0001"],
                                  "vm-stuck": ["fleetrun-cccc0001"]}

        final = await clean_up(machines, backend_for, include_running=True)
        assert final.counts()["deleted"] == 2
        assert leftovers(bed) == {}


def test_runs_to_keep_are_the_followed_and_the_attachable() -> None:
    def record(run_id: str, status: str, summary: dict[str, int]) -> RunRecord:
        return RunRecord(run_id, utc_now(), None, "", "", "", "", (), 42, "host",
                         status, summary, 1)  # type: ignore[arg-type]

    keep = runs_to_keep([
        record("r1", "running", {"Running": 1}),
        record("r2", "interrupted", {"Succeeded": 3, "Unknown": 1}),
        record("r3", "interrupted", {"Succeeded": 4}),
        record("r4", "finished", {"Failed": 4}),
    ])
    assert set(keep) == {"r1", "r2"}
    assert "process 42" in keep["r1"] and "fleetrun attach r2" in keep["r2"]


async def test_attach_deletes_the_run_commands_of_machines_whose_end_the_journal_held(
        tmp_path: Path) -> None:
    # A process killed after the journal held a machine's end, before its DELETE was
    # answered, leaves that run command; attach follows only the unfinished machines, so it
    # must delete these itself (a VM holds 25).
    fleet = fleet_of(linux("vm-1"), linux("arc-1", "arc"), linux("vm-2"))
    async with azure_bed(fleet, tmp_path, delete_finished=False, retry=SHORT_RETRY) as bed:
        vm1, arc1, vm2 = machine_of("vm-1"), machine_of("arc-1", "arc"), machine_of("vm-2")
        for machine in (vm1, arc1):
            await leave_behind(bed, machine, "dddd0001")
        await leave_behind(bed, vm2, "eeee0001")  # another run's: not this attach's to touch
        assert leftovers(bed) == {"vm-1": ["fleetrun-dddd0001"],
                                  "arc-1": ["fleetrun-dddd0001"],
                                  "vm-2": ["fleetrun-eeee0001"]}

        def backend_for(machine: Machine) -> Backend:
            return bed.backend_for(machine)

        # vm-2 never got this run's command (it ended Skipped, say): already gone is fine.
        assert await remove_ended_runs("dddd0001", [vm1, arc1, vm2], backend_for) == []
        assert leftovers(bed) == {"vm-2": ["fleetrun-eeee0001"]}
        assert await remove_ended_runs("dddd0001", [vm1, arc1], backend_for) == []
