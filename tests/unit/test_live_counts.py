"""Queued and Throttled are live phases of a Pending machine: counted apart from Pending and
Running while a run goes, set and cleared by the fan-out from its backend's WaitChanged,
never left on a machine that ended, and never in the run's RunState summary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from core.events import Finished, MachineEvent, OutputAppended, StateChanged, WaitChanged
from core.fanout import FanOut, Subscription, plan_run
from core.live_counts import LIVE_ORDER, is_done, live_counts, live_state
from core.model import Command, CommandId, Machine, MachineRun, RunState, Stream, Waiting
from core.output import OutputStore
from tests.fakes import machines

SHELL = Command(CommandId.SHELL, "echo ok", timeout=60)


def machine_run(state: RunState, waiting: Waiting | None = None) -> MachineRun:
    (machine,) = machines(1)
    return MachineRun(machine=machine, command=SHELL, state=state, waiting=waiting)


def test_a_waiting_pending_machine_counts_as_its_wait_in_order() -> None:
    runs = [machine_run(RunState.RUNNING), machine_run(RunState.PENDING, Waiting.THROTTLED),
            machine_run(RunState.PENDING, Waiting.QUEUED),
            machine_run(RunState.PENDING, Waiting.QUEUED), machine_run(RunState.PENDING),
            machine_run(RunState.SUCCEEDED)]
    counts = live_counts(runs)
    assert list(counts.items()) == [(RunState.PENDING, 1), (Waiting.QUEUED, 2),
                                    (Waiting.THROTTLED, 1), (RunState.RUNNING, 1),
                                    (RunState.SUCCEEDED, 1)]
    assert [state for state in LIVE_ORDER if isinstance(state, RunState)] == list(RunState)
    assert not is_done(Waiting.QUEUED) and is_done(RunState.SUCCEEDED)


def test_a_wait_shows_only_while_pending() -> None:
    assert live_state(machine_run(RunState.RUNNING, Waiting.QUEUED)) is RunState.RUNNING
    assert live_state(machine_run(RunState.PENDING, Waiting.THROTTLED)) is Waiting.THROTTLED


class WaitingBackend:
    """Each machine's start request waits: Queued, then Throttled, until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.throttled = asyncio.Event()

    async def run(self, machine: Machine, command: Command, *, run_id: str
                  ) -> AsyncIterator[MachineEvent]:
        yield WaitChanged(machine.id, Waiting.QUEUED)
        yield WaitChanged(machine.id, Waiting.QUEUED)  # a repeat: not published again
        await self.throttled.wait()
        yield WaitChanged(machine.id, Waiting.THROTTLED)
        await self.release.wait()
        yield StateChanged(machine.id, RunState.RUNNING)
        yield OutputAppended(machine.id, Stream.STDOUT, 0, b"ok\n")
        yield Finished(machine.id, RunState.SUCCEEDED, exit_code=0)

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


async def until(condition: Callable[[], bool]) -> None:
    """Wait (a generous deadline) for ``condition``, checked as the loop turns."""
    async with asyncio.timeout(30):
        while not condition():
            await asyncio.sleep(0.01)


async def test_the_fan_out_sets_a_wait_and_running_clears_it(tmp_path: Path) -> None:
    run = plan_run([(m, SHELL) for m in machines(3)])
    backend = WaitingBackend()
    fanout = FanOut(run, lambda _m: backend, OutputStore(tmp_path / run.run_id))
    events = fanout.subscribe()
    going = asyncio.create_task(fanout.execute())
    await until(lambda: live_counts(run.machines.values()) == {Waiting.QUEUED: 3})
    assert run.summary() == {"Pending": 3}  # the run's states never hold a wait
    backend.throttled.set()
    await until(lambda: live_counts(run.machines.values()) == {Waiting.THROTTLED: 3})
    backend.release.set()
    await asyncio.wait_for(going, 30)
    assert live_counts(run.machines.values()) == {RunState.SUCCEEDED: 3}
    assert all(mr.waiting is None for mr in run.machines.values())
    waits = [e.waiting for e in [e async for e in events] if isinstance(e, WaitChanged)]
    assert sorted(waits) == [Waiting.QUEUED] * 3 + [Waiting.THROTTLED] * 3


async def test_a_machine_canceled_while_queued_ends_without_its_wait(tmp_path: Path) -> None:
    run = plan_run([(m, SHELL) for m in machines(1)])
    backend = WaitingBackend()
    fanout = FanOut(run, lambda _m: backend, OutputStore(tmp_path / run.run_id))
    going = asyncio.create_task(fanout.execute())
    (mr,) = run.machines.values()
    await until(lambda: mr.waiting is Waiting.QUEUED)
    fanout.cancel(mr.machine_id)
    await asyncio.wait_for(going, 30)
    assert mr.state is RunState.CANCELED and mr.waiting is None
    assert live_counts([mr]) == {RunState.CANCELED: 1}


def test_a_slow_subscriber_drops_waits_not_states() -> None:
    sub = Subscription(max_pending=1)
    (machine,) = machines(1)
    sub.put(StateChanged(machine.id, RunState.PENDING))
    sub.put(WaitChanged(machine.id, Waiting.QUEUED))
    sub.put(StateChanged(machine.id, RunState.RUNNING))
    assert sub.pending() == 2 and sub.dropped == 1
