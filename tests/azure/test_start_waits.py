"""A machine whose start request waits on the ARM budget shows so while it waits: Queued for
a write token, Throttled while a 429 holds its scope, and then Running like any other."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.azure.budget import ArmBudget, BucketLimit, BudgetLimits
from core.events import Event, StateChanged, WaitChanged
from core.fanout import FanoutOptions
from core.live_counts import LiveState, live_counts
from core.model import Command, CommandId, MachineId, Run, RunState, Waiting
from core.runner import RunSession
from tests.azure.sandboxed import AzureBed, azure_bed, fleet_of, machine_of
from tests.azure.test_faults import FAST_RETRY, linux

NAMES = ("vm-a", "vm-b", "vm-c")


async def watched_run(bed: AzureBed, tmp_path: Path
                      ) -> tuple[Run, dict[MachineId, list[str]], list[dict[LiveState, int]]]:
    """Run a short command on the three machines; every machine's waits and states in the
    order they came, and the live counts after each event (as a progress display sees them)."""
    machines = [machine_of(name) for name in NAMES]
    command = Command(CommandId.SHELL, "echo hi", timeout=30)
    session = RunSession.plan([(m, command) for m in machines], bed.backend_for,
                              options=FanoutOptions(grace=5), runs_root=tmp_path / "runs")
    seen: dict[MachineId, list[str]] = {m.id: [] for m in machines}
    counts: list[dict[LiveState, int]] = []
    events = session.subscribe()

    async def watch() -> None:
        async for event in events:
            note(event)

    def note(event: Event) -> None:
        if isinstance(event, WaitChanged):
            seen[event.machine_id].append(str(event.waiting))
        elif isinstance(event, StateChanged):
            seen[event.machine_id].append(event.state.value)
        counts.append(live_counts(session.run.machines.values()))

    watcher = asyncio.create_task(watch())
    run = await asyncio.wait_for(session.execute(), timeout=60)
    await watcher
    return run, seen, counts


async def test_puts_waiting_for_a_write_bucket_of_one_show_queued_then_run(
        tmp_path: Path) -> None:
    budget = ArmBudget(BudgetLimits(writes=BucketLimit(1, 4.0), reserve=0.0))
    fleet = fleet_of(*(linux(name) for name in NAMES))
    async with azure_bed(fleet, tmp_path, budget=budget) as bed:
        run, seen, counts = await watched_run(bed, tmp_path)
    assert {mr.state for mr in run.machines.values()} == {RunState.SUCCEEDED}
    queued = [mid for mid, states in seen.items() if Waiting.QUEUED.value in states]
    assert len(queued) >= len(NAMES) - 1, seen  # one token: the others wait for theirs
    for mid in queued:
        states = seen[mid]
        assert states.index("Queued") < states.index("Running"), states
    assert max(c.get(Waiting.QUEUED, 0) for c in counts) >= 1
    assert all(mr.waiting is None for mr in run.machines.values())
    assert bed.arm.budget.throttled_count == 0


async def test_a_put_answered_429_shows_throttled_then_running(tmp_path: Path) -> None:
    """The sandbox's write bucket holds one token; the client does not know it yet, so its
    first burst meets 429s, waits out Retry-After, and goes through."""
    fleet = fleet_of(*(linux(name) for name in NAMES),
                     throttle={"writes": {"capacity": 1, "refill_per_second": 1}})
    async with azure_bed(fleet, tmp_path, retry=FAST_RETRY) as bed:
        run, seen, counts = await watched_run(bed, tmp_path)
        throttled_count = bed.arm.budget.throttled_count
    assert throttled_count >= 1
    assert {mr.state for mr in run.machines.values()} == {RunState.SUCCEEDED}
    throttled = [mid for mid, states in seen.items() if Waiting.THROTTLED.value in states]
    assert throttled, seen
    for mid in throttled:
        states = seen[mid]
        assert states.index("Throttled") < states.index("Running"), states
    assert max(c.get(Waiting.THROTTLED, 0) for c in counts) >= 1
    assert all(mr.waiting is None for mr in run.machines.values())
