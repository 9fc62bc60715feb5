"""Runs through the Azure backends while the sandbox misbehaves.

Each test runs a real fan-out (engine, output store, journal) against a served sandbox with
one kind of fault, then checks what a user relies on: every machine ends in a terminal state
with its reason, and the output fleetrun kept equals the output blob, byte for byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from core.azure.arm import RetryPolicy
from core.azure.budget import ArmBudget, BucketLimit, BudgetLimits
from core.azure.session import blob_folder
from core.fanout import FanoutOptions
from core.journal_store import Journal
from core.model import Command, CommandId, Machine, Run, RunState, Stream
from core.runner import RunSession
from tests.azure.sandboxed import AzureBed, azure_bed, fleet_of, machine_of

# Output on both streams over about a second, with bytes that must survive exactly.
SCRIPT = r"""
for i in $(seq 1 8); do
  printf 'line %s \xc3\xa9\x00\xff\n' "$i"
  echo "err $i" >&2
  sleep 0.1
done
head -c 6000 /dev/zero | tr '\0' 'z'
"""
FAST_RETRY = RetryPolicy(attempts=8, backoff=0.05, backoff_cap=0.5, lro_poll_floor=0.05)


def linux(name: str, kind: str = "vm", **faults: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"name": name, "kind": kind, "os": "linux"}
    if faults:
        table["faults"] = faults
    return table


async def run_all(bed: AzureBed, machines: list[Machine], tmp_path: Path, *,
                  limit: int = 20, grace: float = 1.0) -> tuple[RunSession, Run]:
    command = Command(CommandId.SHELL, SCRIPT, timeout=limit)
    session = RunSession.plan(
        [(m, command) for m in machines], bed.backend_for,
        options=FanoutOptions(grace=grace), journal=Journal(tmp_path / "journal.sqlite3"),
        runs_root=tmp_path / "runs",
    )
    run = await asyncio.wait_for(session.execute(), timeout=limit + 30)
    return session, run


async def blob(bed: AzureBed, run: Run, machine: Machine, stream: Stream) -> bytes | None:
    """The output blob the agent wrote for ``machine``, read over the blob API."""
    assert bed.session.output is not None
    url = bed.session.output.targets(run.run_id, machine)
    target = url.output_uri if stream is Stream.STDOUT else url.error_uri
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(target, headers={"x-ms-version": "2021-12-02"})
    if answer.status_code == 404:
        return None
    assert answer.status_code == 200, answer.text
    return answer.content


async def assert_kept_equals_blobs(bed: AzureBed, tmp_path: Path, run: Run) -> None:
    """What the journal points at holds exactly what the blobs hold."""
    record = Journal(tmp_path / "journal.sqlite3").get_run(run.run_id)
    for machine_record in record.machines:
        machine = run.machines[machine_record.machine_id].machine
        for stream, path in ((Stream.STDOUT, machine_record.stdout_file),
                             (Stream.STDERR, machine_record.stderr_file)):
            kept = Path(path).read_bytes() if path and Path(path).exists() else b""
            expected = await blob(bed, run, machine, stream)
            assert kept == (expected or b""), (
                f"{machine.name} {stream.value}: kept {len(kept)} bytes, blob has "
                f"{len(expected or b'')}")


EXPECTED_STDOUT = b"".join(b"line %d \xc3\xa9\x00\xff\n" % i for i in range(1, 9)) + b"z" * 6000
EXPECTED_STDERR = b"".join(b"err %d\n" % i for i in range(1, 9))


def assert_succeeded_with_full_output(run: Run) -> None:
    for mr in run.machines.values():
        assert mr.state is RunState.SUCCEEDED, (mr.machine.name, mr.state, mr.error)
        assert mr.exit_code == 0
        assert Path(mr.stdout_file).read_bytes() == EXPECTED_STDOUT
        assert Path(mr.stderr_file).read_bytes() == EXPECTED_STDERR


async def test_429_storm_slows_the_run_but_loses_nothing(tmp_path: Path) -> None:
    fleet = fleet_of(*(linux(f"storm-{i}") for i in range(4)),
                     faults={"throttle_storm": {"every": "0.6s", "lasting": "0.3s"}})
    async with azure_bed(fleet, tmp_path, retry=FAST_RETRY) as bed:
        machines = [machine_of(f"storm-{i}") for i in range(4)]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        assert bed.arm.budget.throttled_count > 0  # the storm did hit
        await assert_kept_equals_blobs(bed, tmp_path, run)


async def test_5xx_answers_are_retried(tmp_path: Path) -> None:
    fleet = fleet_of(*(linux(f"flaky-{i}") for i in range(4)), faults={"error_rate": 0.3},
                     seed=7)
    async with azure_bed(fleet, tmp_path, retry=FAST_RETRY) as bed:
        machines = [machine_of(f"flaky-{i}") for i in range(4)]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        await assert_kept_equals_blobs(bed, tmp_path, run)


async def test_connection_resets_are_retried(tmp_path: Path) -> None:
    fleet = fleet_of(*(linux(f"drop-{i}") for i in range(4)), faults={"drop_rate": 0.25},
                     seed=3)
    async with azure_bed(fleet, tmp_path, retry=FAST_RETRY) as bed:
        machines = [machine_of(f"drop-{i}") for i in range(4)]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        await assert_kept_equals_blobs(bed, tmp_path, run)


async def test_stuck_agent_times_out_with_its_reason_and_others_finish(tmp_path: Path) -> None:
    fleet = fleet_of(linux("stuck-1", stuck=True), linux("fine-1"), linux("fine-2", "arc"))
    async with azure_bed(fleet, tmp_path) as bed:
        machines = [machine_of("stuck-1"), machine_of("fine-1"), machine_of("fine-2", "arc")]
        _, run = await run_all(bed, machines, tmp_path, limit=3, grace=1)
        stuck = run.machines[machines[0].id]
        assert stuck.state is RunState.TIMED_OUT
        assert "3 s timeout" in stuck.error
        for machine in machines[1:]:
            assert run.machines[machine.id].state is RunState.SUCCEEDED
        # A timed-out run command is deleted, which is what stops a script on Azure.
        assert not bed.service.run_commands(next(bed.service.all_machines()))
        await assert_kept_equals_blobs(bed, tmp_path, run)


async def test_late_blob_still_delivers_every_byte(tmp_path: Path) -> None:
    fleet = fleet_of(linux("late-1", blob_delay="1s"), linux("late-2", "arc", blob_delay="1s"))
    async with azure_bed(fleet, tmp_path) as bed:
        machines = [machine_of("late-1"), machine_of("late-2", "arc")]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        await assert_kept_equals_blobs(bed, tmp_path, run)


async def test_machine_that_disconnects_mid_run_ends_agent_lost_with_its_output(
    tmp_path: Path,
) -> None:
    fleet = fleet_of(linux("gone-vm", disconnect_after="0.4s"),
                     linux("gone-arc", "arc", disconnect_after="0.4s"), linux("fine-1"))
    async with azure_bed(fleet, tmp_path) as bed:
        machines = [machine_of("gone-vm"), machine_of("gone-arc", "arc"), machine_of("fine-1")]
        # A minute's timeout: the loss, found within stall_after, ends these machines first.
        _, run = await run_all(bed, machines, tmp_path, limit=60, grace=1)
        for machine in machines[:2]:
            mr = run.machines[machine.id]
            assert mr.state.terminal and mr.state is not RunState.SUCCEEDED, mr.state
            assert mr.error, f"{machine.name} ended {mr.state} without a reason"
            assert mr.state is RunState.FAILED, (mr.state, mr.error)
            assert "agent lost during the run" in mr.error, mr.error
            assert "timeout" not in mr.error, mr.error
            assert mr.stdout_bytes > 0  # what was flushed before it dropped off was kept
        assert run.machines[machines[2].id].state is RunState.SUCCEEDED
        await assert_kept_equals_blobs(bed, tmp_path, run)


async def test_paced_client_never_meets_a_429(tmp_path: Path) -> None:
    """A small write bucket on the server, the same one mirrored in the client: no 429s."""
    small = {"capacity": 5, "refill_per_second": 10}
    fleet = fleet_of(*(linux(f"paced-{i}") for i in range(15)),
                     throttle={"writes": small, "deletes": small})
    budget = ArmBudget(BudgetLimits(writes=BucketLimit(5, 10.0), deletes=BucketLimit(5, 10.0),
                                    reserve=0.0))
    async with azure_bed(fleet, tmp_path, budget=budget) as bed:
        machines = [machine_of(f"paced-{i}") for i in range(15)]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        assert budget.throttled_count == 0
        assert bed.arm.sent["writes"] == 15
        assert bed.arm.sent["deletes"] == 15


async def test_a_client_expecting_a_bigger_bucket_is_paced_by_the_headers(tmp_path: Path) -> None:
    """The client believes in ARM's default write bucket (10/s); the server's is tiny (3, at
    5/s). The counts every answer reports pace it anyway: a few 429s while it learns that
    the bucket refills slower than configured, no storm, nothing lost (429s themselves are
    met in the storm test above)."""
    small = {"capacity": 3, "refill_per_second": 5}
    fleet = fleet_of(*(linux(f"eager-{i}") for i in range(10)), throttle={"writes": small})
    async with azure_bed(fleet, tmp_path, retry=FAST_RETRY) as bed:
        machines = [machine_of(f"eager-{i}") for i in range(10)]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        assert bed.arm.budget.throttled_count <= 10
        await assert_kept_equals_blobs(bed, tmp_path, run)


def test_blob_folders_differ_for_same_names_in_two_groups() -> None:
    one, two = machine_of("web-1", group="rg-a"), machine_of("web-1", group="rg-b")
    assert blob_folder(one) != blob_folder(two)
    assert blob_folder(one).startswith("web-1-")


async def test_polls_waiting_for_read_tokens_spend_no_read_on_agent_checks(
    tmp_path: Path,
) -> None:
    """A read bucket too small for the polls' pace: a machine's views come seconds apart.
    That is the budget, not a silent agent; only a poll that finds the view unchanged says
    the agent may be gone, and checking it would spend the reads the polls lack."""
    slow = {"capacity": 3, "refill_per_second": 2}
    fleet = fleet_of(*(linux(f"slow-{i}") for i in range(3)), throttle={"reads": slow})
    budget = ArmBudget(BudgetLimits(reads=BucketLimit(3, 2.0), reserve=0.0))
    async with azure_bed(fleet, tmp_path, budget=budget) as bed:
        checks: list[str] = []

        async def count_checks(request: httpx.Request) -> None:
            if request.method == "GET" and "/runCommands/" not in request.url.path:
                checks.append(request.url.path)

        bed.arm.http.event_hooks["request"].append(count_checks)
        machines = [machine_of(f"slow-{i}") for i in range(3)]
        _, run = await run_all(bed, machines, tmp_path)
        assert_succeeded_with_full_output(run)
        await assert_kept_equals_blobs(bed, tmp_path, run)
        assert budget.throttled_count == 0
    assert checks == []
