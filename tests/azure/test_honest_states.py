"""States that tell the truth under faults: deletes that fail are retried until nothing is
left behind, and attach handles machines whose run command never reached Azure."""

from __future__ import annotations

from pathlib import Path

from core.azure.arm import RetryPolicy
from core.backends.base import IfMissing
from core.events import Finished, OutputAppended
from core.model import Command, CommandId, RunState, Stream
from tests.azure.sandboxed import AzureBed, azure_bed, fleet_of, machine_of
from tests.azure.test_faults import (
    EXPECTED_STDERR,
    EXPECTED_STDOUT,
    SCRIPT,
    assert_kept_equals_blobs,
    assert_succeeded_with_full_output,
    linux,
    run_all,
)

# ArmClient gives up on a DELETE after two 500s: the backend's own retry has to do the rest.
SHORT_RETRY = RetryPolicy(attempts=2, backoff=0.05, backoff_cap=0.2, lro_poll_floor=0.05)


def leftovers(bed: AzureBed) -> dict[str, list[str]]:
    """The run commands each sandbox machine still holds (none, once fleetrun is done)."""
    found = {m.name: list(bed.service.run_commands(m)) for m in bed.service.all_machines()}
    return {name: names for name, names in found.items() if names}


async def test_a_delete_that_keeps_failing_is_retried_until_nothing_is_left(
    tmp_path: Path,
) -> None:
    fleet = fleet_of(linux("sticky-vm", delete_errors=3), linux("sticky-arc", "arc",
                     delete_errors=3), linux("calm-vm"))
    async with azure_bed(fleet, tmp_path, retry=SHORT_RETRY) as bed:
        machines = [machine_of("sticky-vm"), machine_of("sticky-arc", "arc"),
                    machine_of("calm-vm")]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        await assert_kept_equals_blobs(bed, tmp_path, run)
        assert leftovers(bed) == {}


async def collect(bed: AzureBed, kind: str, name: str, if_missing: IfMissing,
                  run_id: str) -> tuple[Finished, dict[Stream, bytes]]:
    machine = machine_of(name, kind)
    command = Command(CommandId.SHELL, SCRIPT, timeout=30)
    output: dict[Stream, bytes] = {Stream.STDOUT: b"", Stream.STDERR: b""}
    events = [e async for e in bed.backend(kind).attach(
        machine, command, run_id=run_id, if_missing=if_missing)]
    for event in events:
        if isinstance(event, OutputAppended):
            assert event.offset == len(output[event.stream])
            output[event.stream] += event.data
    finished = events[-1]
    assert isinstance(finished, Finished)
    return finished, output


async def test_attach_sends_a_run_command_that_never_reached_azure(tmp_path: Path) -> None:
    async with azure_bed(fleet_of(linux("unsent-vm"), linux("unsent-arc", "arc")),
                         tmp_path) as bed:
        for kind, name in (("vm", "unsent-vm"), ("arc", "unsent-arc")):
            finished, output = await collect(bed, kind, name, IfMissing.SUBMIT, "unsent1")
            assert finished.state is RunState.SUCCEEDED, finished
            assert output == {Stream.STDOUT: EXPECTED_STDOUT, Stream.STDERR: EXPECTED_STDERR}
        assert leftovers(bed) == {}


async def test_attach_without_submitting_reports_the_unsent_not_started(
    tmp_path: Path,
) -> None:
    async with azure_bed(fleet_of(linux("unsent-vm")), tmp_path) as bed:
        finished, output = await collect(bed, "vm", "unsent-vm", IfMissing.REPORT, "unsent2")
        assert finished.state is RunState.NOT_STARTED
        assert "never sent" in finished.error
        assert output == {Stream.STDOUT: b"", Stream.STDERR: b""}
        assert leftovers(bed) == {}  # nothing was created


async def test_attach_never_sends_again_what_the_journal_saw_start(tmp_path: Path) -> None:
    async with azure_bed(fleet_of(linux("ran-vm")), tmp_path) as bed:
        finished, _ = await collect(bed, "vm", "ran-vm", IfMissing.RAN, "ran1")
        assert finished.state is RunState.FAILED
        assert "result lost" in finished.error
        assert leftovers(bed) == {}
