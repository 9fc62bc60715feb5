"""The fan-out engine: limits, error budget, canary ramp, cancel, timeout, rerun, events."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from core.events import Event, Finished, OutputAppended, RunFinished, RunStarted, StateChanged
from core.fanout import FanOut, FanoutOptions, plan_run, rerun_assignments
from core.model import Command, CommandId, RunState, Stream
from core.output import OutputStore
from core.validate import Limit
from tests.fakes import FakeBackend, Scenario, machines

SHELL = Command(CommandId.SHELL, "echo ok", timeout=60)


def make(
    tmp_path: Path,
    count: int,
    backend: FakeBackend,
    *,
    options: FanoutOptions | None = None,
    unhealthy: tuple[int, ...] = (),
    command: Command = SHELL,
) -> FanOut:
    run = plan_run([(m, command) for m in machines(count, unhealthy=unhealthy)])
    return FanOut(run, lambda _m: backend, OutputStore(tmp_path / run.run_id), options)


async def collect(fanout: FanOut) -> list[Event]:
    sub = fanout.subscribe()
    events: list[Event] = []

    async def drain() -> None:
        async for ev in sub:
            events.append(ev)

    drainer = asyncio.create_task(drain())
    await fanout.execute()
    await drainer
    return events


async def test_every_machine_succeeds_and_events_are_ordered(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(stdout=b"hello\n"))
    fanout = make(tmp_path, 5, backend)
    events = await collect(fanout)

    assert isinstance(events[0], RunStarted) and events[0].machine_count == 5
    assert isinstance(events[-1], RunFinished)
    assert events[-1].summary == {"Succeeded": 5}
    for mid in fanout.run.machines:
        mine = [e for e in events if getattr(e, "machine_id", None) == mid]
        assert isinstance(mine[0], StateChanged) and mine[0].state is RunState.RUNNING
        assert isinstance(mine[-1], Finished) and mine[-1].state is RunState.SUCCEEDED
        assert sum(isinstance(e, Finished) for e in mine) == 1
    mr = next(iter(fanout.run.machines.values()))
    assert mr.exit_code == 0 and mr.started is not None and mr.ended is not None
    assert Path(mr.stdout_file).read_bytes() == b"hello\n"
    # Nothing printed, no file: the path is still reported for readers to try.
    assert mr.stderr_file.endswith(".stderr") and not Path(mr.stderr_file).exists()
    assert fanout.run.ended is not None


async def test_concurrency_limit_holds(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(duration=0.02))
    fanout = make(tmp_path, 20, backend, options=FanoutOptions(concurrency=Limit(3, False)))
    await fanout.execute()
    assert backend.max_running == 3
    assert fanout.run.summary() == {"Succeeded": 20}


async def test_concurrency_as_percentage(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(duration=0.02))
    fanout = make(tmp_path, 20, backend, options=FanoutOptions(concurrency=Limit(25, True)))
    await fanout.execute()
    assert backend.max_running == 5


async def test_error_budget_leaves_the_rest_not_started(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(exit_code=2))
    opts = FanoutOptions(concurrency=Limit(1, False), max_errors=Limit(3, False))
    fanout = make(tmp_path, 10, backend, options=opts)
    events = await collect(fanout)

    assert fanout.run.summary() == {"Failed": 3, "NotStarted": 7}
    assert len(backend.started) == 3
    not_started = [mr for mr in fanout.run.machines.values() if mr.state is RunState.NOT_STARTED]
    assert all("error budget" in mr.error for mr in not_started)
    assert "error budget spent: 3" in fanout.run.stop_reason
    assert isinstance(events[-1], RunFinished) and "error budget" in events[-1].stop_reason


async def test_error_budget_as_percentage_counts_timeouts(tmp_path: Path) -> None:
    ms = machines(10)
    backend = FakeBackend(
        scenarios={ms[0].id: Scenario(hang=True), ms[1].id: Scenario(exit_code=1)},
        default=Scenario(duration=0.6),
    )
    run = plan_run([(m, Command(CommandId.SHELL, "x", timeout=1)) for m in ms])
    opts = FanoutOptions(concurrency=Limit(2, False), max_errors=Limit(20, True), grace=0.5)
    fanout = FanOut(run, lambda _m: backend, OutputStore(tmp_path), opts)
    await fanout.execute()
    # 20% of 10 is 2: the early failure plus the stuck agent's timeout (at 1.5 s) spend it.
    # Meanwhile the second slot ran machines of 0.6 s each; the one running then finishes.
    assert run.summary() == {"TimedOut": 1, "Failed": 1, "Succeeded": 3, "NotStarted": 5}


async def test_machines_already_running_finish_when_budget_is_spent(tmp_path: Path) -> None:
    ms = machines(4)
    backend = FakeBackend(
        scenarios={ms[0].id: Scenario(exit_code=1)}, default=Scenario(duration=0.2)
    )
    run = plan_run([(m, SHELL) for m in ms])
    opts = FanoutOptions(concurrency=Limit(3, False), max_errors=Limit(1, False))
    await FanOut(run, lambda _m: backend, OutputStore(tmp_path), opts).execute()
    assert run.summary() == {"Failed": 1, "Succeeded": 2, "NotStarted": 1}


async def test_canary_ramp_starts_1_then_2_then_4(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(duration=0.03))
    waves: list[int] = []
    original = backend.run

    def spy(machine, command, *, run_id):  # type: ignore[no-untyped-def]
        waves.append(backend.running)
        return original(machine, command, run_id=run_id)

    backend.run = spy  # type: ignore[method-assign]
    opts = FanoutOptions(concurrency=Limit(4, False), canary=True)
    fanout = make(tmp_path, 11, backend, options=opts)
    await fanout.execute()
    # Running count seen as each machine starts: wave 1 alone, wave 2 of two, then
    # waves of four (the limit).
    assert waves[:7] == [0, 0, 1, 0, 1, 2, 3]
    assert backend.max_running == 4
    assert fanout.run.summary() == {"Succeeded": 11}


async def test_canary_stops_after_first_failure_with_budget_one(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(exit_code=1))
    opts = FanoutOptions(concurrency=Limit(10, False), max_errors=Limit(1, False), canary=True)
    fanout = make(tmp_path, 10, backend, options=opts)
    await fanout.execute()
    assert backend.started == [next(iter(fanout.run.machines))]
    assert fanout.run.summary() == {"Failed": 1, "NotStarted": 9}


async def test_unhealthy_machines_are_skipped_not_failed(tmp_path: Path) -> None:
    backend = FakeBackend()
    opts = FanoutOptions(max_errors=Limit(1, False))
    fanout = make(tmp_path, 4, backend, unhealthy=(1, 2), options=opts)
    await fanout.execute()
    assert fanout.run.summary() == {"Succeeded": 2, "Skipped": 2}
    skipped = fanout.run.machines["m001"]
    assert "NotReady" in skipped.error and "agent silent" in skipped.error
    assert "m001" not in backend.started
    assert fanout.failures == 0


async def test_cancel_one_running_machine(tmp_path: Path) -> None:
    ms = machines(3)
    backend = FakeBackend(scenarios={ms[1].id: Scenario(hang=True)})
    run = plan_run([(m, SHELL) for m in ms])
    fanout = FanOut(run, lambda _m: backend, OutputStore(tmp_path), None)
    task = asyncio.create_task(fanout.execute())
    while ms[1].id not in backend.live:
        await asyncio.sleep(0.01)
    fanout.cancel(ms[1].id)
    await task
    assert run.machines[ms[1].id].state is RunState.CANCELED
    assert backend.canceled == [ms[1].id]
    assert backend.cancel_calls == [ms[1].id]
    assert run.summary() == {"Succeeded": 2, "Canceled": 1}


async def test_cancel_pending_machine_never_starts_it(tmp_path: Path) -> None:
    ms = machines(3)
    backend = FakeBackend(default=Scenario(duration=0.05))
    run = plan_run([(m, SHELL) for m in ms])
    fanout = FanOut(run, lambda _m: backend, OutputStore(tmp_path), FanoutOptions(Limit(1, False)))
    task = asyncio.create_task(fanout.execute())
    await asyncio.sleep(0.01)
    fanout.cancel(ms[2].id)
    await task
    assert ms[2].id not in backend.started
    assert run.machines[ms[2].id].state is RunState.CANCELED
    assert run.machines[ms[2].id].error == "canceled before start"


async def test_cancel_all_stops_running_and_leaves_rest_not_started(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(hang=True))
    fanout = make(tmp_path, 6, backend, options=FanoutOptions(concurrency=Limit(2, False)))
    task = asyncio.create_task(fanout.execute())
    while len(backend.live) < 2:
        await asyncio.sleep(0.01)
    fanout.cancel_all()
    run = await task
    assert run.summary() == {"Canceled": 2, "NotStarted": 4}
    assert sorted(backend.cancel_calls) == sorted(backend.started)
    assert not backend.live
    assert run.stop_reason == "run canceled"


async def test_cancelling_execute_cancels_remote_work(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(hang=True))
    fanout = make(tmp_path, 3, backend)
    task = asyncio.create_task(fanout.execute())
    while len(backend.live) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not backend.live
    assert len(backend.cancel_calls) == 3
    assert fanout.run.summary() == {"Canceled": 3}
    assert fanout.run.ended is not None


async def test_stuck_backend_times_out_after_grace(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(hang=True))
    cmd = Command(CommandId.SHELL, "sleep 1000", timeout=1)
    fanout = make(tmp_path, 1, backend, command=cmd, options=FanoutOptions(grace=0.2))
    run = await fanout.execute()
    mr = next(iter(run.machines.values()))
    assert mr.state is RunState.TIMED_OUT and mr.exit_code == -1
    assert "1 s timeout" in mr.error
    assert backend.cancel_calls == [mr.machine_id]
    assert not backend.live


async def test_backend_exception_fails_one_machine_only(tmp_path: Path) -> None:
    ms = machines(3)
    backend = FakeBackend(
        scenarios={
            ms[0].id: Scenario(raises=ConnectionResetError("peer reset")),
            ms[1].id: Scenario(no_result=True),
        }
    )
    run = plan_run([(m, SHELL) for m in ms])
    await FanOut(run, lambda _m: backend, OutputStore(tmp_path), None).execute()
    assert run.machines[ms[0].id].state is RunState.FAILED
    assert "ConnectionResetError: peer reset" in run.machines[ms[0].id].error
    assert run.machines[ms[1].id].error == "backend ended without a result"
    assert run.machines[ms[2].id].state is RunState.SUCCEEDED


async def test_rerun_picks_failed_timed_out_and_not_started(tmp_path: Path) -> None:
    ms = machines(5)
    backend = FakeBackend(
        scenarios={ms[0].id: Scenario(exit_code=1), ms[1].id: Scenario(hang=True)},
    )
    cmd = Command(CommandId.SHELL, "x", timeout=1)
    run = plan_run([(m, cmd) for m in ms])
    opts = FanoutOptions(concurrency=Limit(1, False), max_errors=Limit(2, False), grace=0.1)
    await FanOut(run, lambda _m: backend, OutputStore(tmp_path / "a"), opts).execute()
    assert run.summary() == {"Failed": 1, "TimedOut": 1, "NotStarted": 3}

    again = rerun_assignments(run)
    assert [m.id for m, _ in again] == [m.id for m in ms]
    fixed = FakeBackend()
    rerun = plan_run(again, parent_run_id=run.run_id)
    await FanOut(rerun, lambda _m: fixed, OutputStore(tmp_path / "b"), None).execute()
    assert rerun.parent_run_id == run.run_id
    assert rerun.summary() == {"Succeeded": 5}
    # The rerun reuses the very command object, secrets included.
    assert all(mr.command is cmd for mr in rerun.machines.values())


async def test_rerun_of_a_clean_run_is_empty(tmp_path: Path) -> None:
    fanout = make(tmp_path, 3, FakeBackend())
    await fanout.execute()
    assert rerun_assignments(fanout.run) == []


async def test_slow_subscriber_never_stalls_the_run(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(stdout=b"x" * 100_000, chunks=100))
    fanout = make(tmp_path, 20, backend)
    stuck = fanout.subscribe(max_pending=50)  # never read while the run goes on
    run = await asyncio.wait_for(fanout.execute(), timeout=10)
    assert run.summary() == {"Succeeded": 20}
    assert stuck.dropped > 0
    kept = [ev async for ev in stuck]
    finished = [ev for ev in kept if isinstance(ev, Finished)]
    assert len(finished) == 20
    assert isinstance(kept[-1], RunFinished)
    # Output is complete on disk even for the subscriber that missed events.
    mr = next(iter(run.machines.values()))
    assert Path(mr.stdout_file).stat().st_size == 100_000
    assert mr.stdout_bytes == 100_000


async def test_output_tails_and_groups(tmp_path: Path) -> None:
    ms = machines(5)
    big = bytes(range(256)) * 40  # 10,240 bytes
    backend = FakeBackend(
        scenarios={
            ms[0].id: Scenario(stdout=b"disk full\n", exit_code=1),
            ms[1].id: Scenario(stdout=b"disk full\n", exit_code=1),
            ms[2].id: Scenario(stdout=big, chunks=7),
        },
        default=Scenario(stdout=b"ok\n"),
    )
    run = plan_run([(m, SHELL) for m in ms])
    store = OutputStore(tmp_path)
    fanout = FanOut(run, lambda _m: backend, store, None)
    await fanout.execute()
    assert store.tail(ms[2].id, Stream.STDOUT) == big[-4096:]
    assert Path(run.machines[ms[2].id].stdout_file).read_bytes() == big

    groups = store.groups(run.machines.values())
    assert [(g.size, g.exit_code) for g in groups] == [(2, 0), (2, 1), (1, 0)]
    assert set(groups[0].machine_ids) == {ms[3].id, ms[4].id}
    assert groups[1].stdout_tail == b"disk full\n"


async def test_many_machines_do_not_exhaust_file_descriptors(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(stdout=b"a" * 10, stderr=b"b" * 10, duration=0.05))
    fanout = make(tmp_path, 1500, backend)
    run = await fanout.execute()
    assert run.summary() == {"Succeeded": 1500}
    assert all(Path(mr.stderr_file).read_bytes() == b"b" * 10 for mr in run.machines.values())


async def test_a_running_machines_file_grows_before_the_run_ends(tmp_path: Path) -> None:
    """Files are written a moment after the bytes are stored, not only when the run ends:
    the full-output pane follows a machine that is still running."""
    release = asyncio.Event()
    backend = FakeBackend(default=Scenario(stdout=b"first line\n" * 100, chunks=10,
                                           release=release))
    fanout = make(tmp_path, 3, backend)
    running = asyncio.create_task(fanout.execute())
    files = [Path(mr.stdout_file) for mr in fanout.run.machines.values()]
    deadline = asyncio.get_running_loop().time() + 30
    while not all(f.exists() and f.read_bytes() == b"first line\n" * 100 for f in files):
        assert asyncio.get_running_loop().time() < deadline, "files never written mid-run"
        await asyncio.sleep(0.01)
    assert not running.done()
    release.set()
    run = await running
    assert run.summary() == {"Succeeded": 3}
    assert all(f.read_bytes() == b"first line\n" * 100 for f in files)


async def test_output_that_cannot_be_written_is_reported_once_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "run").write_text("a file where the run's folder should be")
    backend = FakeBackend(default=Scenario(stdout=b"lost\n"))
    run = plan_run([(m, SHELL) for m in machines(3)])
    await FanOut(run, lambda _m: backend, OutputStore(tmp_path / "run"), None).execute()
    assert run.summary() == {"Succeeded": 3}
    written = [r for r in caplog.records if "cannot write output file" in r.getMessage()]
    assert len(written) == 1 and "/run" in written[0].getMessage()
    # The user sees it where the run's end is reported (CLI summary, run screen, journal).
    assert run.stop_reason.startswith(f"output files incomplete: cannot write in {tmp_path}/run")


async def test_subscriber_sees_output_events_in_order(tmp_path: Path) -> None:
    backend = FakeBackend(default=Scenario(stdout=b"0123456789" * 10, chunks=10))
    fanout = make(tmp_path, 1, backend)
    events = await collect(fanout)
    offsets = [e.offset for e in events if isinstance(e, OutputAppended)]
    assert offsets == list(range(0, 100, 10))


async def test_a_big_run_frees_the_heap_it_froze_and_leaves_another_freeze_alone(
    tmp_path: Path,
) -> None:
    # A big run keeps the collector off its plan while it goes; afterwards garbage made
    # before the run is collectable again, and a freeze someone else made is theirs.
    backend = FakeBackend(default=Scenario(stdout=b"ok\n"))
    fanout = make(tmp_path / "a", 1_000, backend)
    assert gc.get_freeze_count() == 0
    await fanout.execute()
    assert gc.get_freeze_count() == 0
    assert fanout.run.summary() == {"Succeeded": 1_000}
    gc.freeze()
    try:
        await make(tmp_path / "b", 1_000, backend).execute()
        assert gc.get_freeze_count() > 0  # still frozen (some of it was freed meanwhile)
    finally:
        gc.unfreeze()
