"""The orchestrator: one command, many machines, through the Backend protocol.

A :class:`FanOut` runs one :class:`~core.model.Run`. It starts machines under a
concurrency limit (optionally ramping 1, 2, 4, ... as a canary), stops starting new ones
once the error budget is spent, enforces a per-machine deadline on top of the backend's
own timeout, cancels one machine or all of them, and publishes every event to any number
of subscribers. It is the only writer of the run state; front ends read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import traceback
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from core.backends.base import Backend, IfMissing, ReattachableBackend
from core.events import (
    Event,
    Finished,
    MachineEvent,
    OutputAppended,
    RunFinished,
    RunStarted,
    StateChanged,
    TailUpdated,
    WaitChanged,
)
from core.model import (
    Command,
    Machine,
    MachineId,
    MachineRun,
    Run,
    RunState,
    Stream,
    new_run_id,
    utc_now,
)
from core.output import OutputStore
from core.redaction import LetThrough, MachineRedaction, SecretMask
from core.validate import Limit

log = logging.getLogger(__name__)

_STREAMS = (Stream.STDOUT, Stream.STDERR)

_FREEZE_FROM = 1_000
"""Machines in a run from which the collector is kept off what existed when it started."""


@contextlib.contextmanager
def _heap_frozen(machines: int) -> Iterator[None]:
    """Keep the cyclic collector's full passes off the objects that exist now, for a while.

    A big run allocates enough to set off several full collections, and each walks every
    object the plan made (for 10,000 machines, 0.2-0.5 s of a run's CPU in all) though none
    of them can be garbage before the run ends. Left alone when something else froze the
    heap already, since ending the freeze would end theirs too.
    """
    if machines < _FREEZE_FROM or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@dataclass(frozen=True, slots=True)
class FanoutOptions:
    """How a run spreads over its machines.

    Attributes:
        concurrency: machines running at once; None means all of them.
        max_errors: after this many failures (Failed or TimedOut) no new machine starts;
            None means never stop.
        canary: start 1 machine, then 2, 4, ... each wave once the previous one has
            finished, until the concurrency limit is reached.
        grace: seconds past a command's own timeout before the engine stops waiting on a
            backend that has not reported a result.
        cancel_timeout: seconds to wait for a backend to confirm a cancel.
    """

    concurrency: Limit | None = None
    max_errors: Limit | None = None
    canary: bool = False
    grace: float = 30.0
    cancel_timeout: float = 30.0


def plan_run(
    assignments: Sequence[tuple[Machine, Command]],
    *,
    fleet: str = "",
    target: str = "",
    parent_run_id: str = "",
    source_group: str = "",
    run_id: str | None = None,
) -> Run:
    """A new Run with every machine Pending."""
    machines = {m.id: MachineRun(machine=m, command=c) for m, c in assignments}
    return Run(
        run_id=run_id or new_run_id(),
        machines=machines,
        fleet=fleet,
        target=target,
        parent_run_id=parent_run_id,
        source_group=source_group,
    )


def rerun_assignments(
    run: Run, states: frozenset[RunState] | None = None
) -> list[tuple[Machine, Command]]:
    """The machines to run again: by default the failed, timed out and not started.

    The commands are the run's own objects, secrets included, so this works only while
    they are in memory.
    """
    wanted = states if states is not None else frozenset(s for s in RunState if s.rerunnable)
    return [(mr.machine, mr.command) for mr in run.machines.values() if mr.state in wanted]


class Subscription:
    """An event stream for one consumer, which may be slower than the run.

    Machine state events are always kept (there are a few per machine). When more than
    ``max_pending`` events wait, output, tail and wait events are dropped for this
    subscriber only and counted in ``dropped``: the bytes are safe in the output store, a
    wait is a passing phase the run state holds, and a slow screen or pipe must never stall
    the run or grow memory with them.
    """

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.dropped = 0
        self._events: deque[Event] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def put(self, event: Event) -> None:
        if self._closed:
            return
        if len(self._events) >= self.max_pending and isinstance(
            event, OutputAppended | TailUpdated | WaitChanged
        ):
            self.dropped += 1
            return
        self._events.append(event)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        self._closed = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def pending(self) -> int:
        return len(self._events)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
            self._waiter = None
        return self._events.popleft()


@dataclass(slots=True)
class _Slot:
    machine_run: MachineRun
    backend: Backend
    redaction: MachineRedaction
    task: asyncio.Task[None] | None = None
    cancel_requested: bool = False
    finished: bool = False
    last_report: str = ""
    """The message of the machine's last state change, for a timeout's reason."""


class FanOut:
    """Executes one run. Create it, subscribe, then ``await execute()``."""

    def __init__(
        self,
        run: Run,
        backend_for: Callable[[Machine], Backend],
        output: OutputStore,
        options: FanoutOptions | None = None,
        *,
        reattach: bool = False,
        if_missing: Mapping[MachineId, IfMissing] | None = None,
    ) -> None:
        self.run = run
        self.reattach = reattach
        """Follow runs started by an earlier process instead of starting them."""
        self.if_missing = dict(if_missing or {})
        """When re-attaching: what to do with a machine the service has no run for (by
        default it is reported NotStarted; see :class:`IfMissing`)."""
        self.output = output
        self.options = options or FanoutOptions()
        self.before_cleanup: Callable[[MachineId], Awaitable[None]] | None = None
        """Awaited when a machine of a backend whose runs outlive fleetrun has ended, before
        the backend may clean up (delete its run command, the service's only record of the
        result): the journal writes the end first, so a process killed in between leaves
        ``attach`` a result to report instead of a run command that is gone."""
        masks: dict[int, SecretMask] = {}
        self._slots: dict[MachineId, _Slot] = {}
        for mid, mr in run.machines.items():
            output.attach(mr, resume=reattach)
            self._slots[mid] = _Slot(mr, backend_for(mr.machine),
                                     self._redaction(mr, masks, reattach))
        self._queue: deque[MachineId] = deque()
        self._subscribers: list[Subscription] = []
        self._running = 0
        self._failures = 0
        self._stop_reason = ""
        self._done: asyncio.Event | None = None
        runnable = sum(1 for mr in run.machines.values() if mr.machine.health.runnable)
        self._runnable_total = runnable
        self._limit = self._resolve(self.options.concurrency, runnable) or max(runnable, 1)
        self._budget = self._resolve(self.options.max_errors, runnable)
        self._wave_size = 1 if self.options.canary else self._limit
        self._wave_started = 0
        self._wave_done = 0

    def _redaction(self, mr: MachineRun, masks: dict[int, SecretMask], reattach: bool
                   ) -> MachineRedaction:
        """Everything a machine says passes here first: its command's secrets are masked
        before the store, the journal or any subscriber sees them (core.redaction)."""
        mask = masks.get(id(mr.command))
        if mask is None:
            mask = masks[id(mr.command)] = SecretMask.of([mr.command])
        if reattach:
            # The count of what is stored comes from beside the files (a crash leaves the
            # journal's behind): the streams count on from there.
            redaction = MachineRedaction(
                mask, {s: self.output.resume_point(mr.machine_id, s) for s in _STREAMS})
        else:
            redaction = MachineRedaction(mask, masked=mr.masked)
        mr.masked = redaction.masked
        return redaction

    @staticmethod
    def _resolve(limit: Limit | None, total: int) -> int | None:
        return None if limit is None else max(1, limit.resolve(max(total, 1)))

    # -- public API ---------------------------------------------------------------------

    def subscribe(self, max_pending: int = 10_000) -> Subscription:
        """A new event stream; subscribe before ``execute`` to see every event."""
        sub = Subscription(max_pending)
        self._subscribers.append(sub)
        return sub

    @property
    def failures(self) -> int:
        return self._failures

    @property
    def error_budget(self) -> int | None:
        return self._budget

    @property
    def stop_reason(self) -> str:
        return self._stop_reason

    async def execute(self) -> Run:
        """Run every machine to a terminal state and return the run."""
        self._done = asyncio.Event()
        self._publish(RunStarted(self.run.run_id, len(self.run.machines)))
        for mid, slot in self._slots.items():
            health = slot.machine_run.machine.health
            if health.runnable:
                self._queue.append(mid)
            else:
                reason = f"skipped: {health.status.value}"
                if health.detail:
                    reason += f" ({health.detail})"
                if health.remedy:
                    reason += f"; to lift it, run on the machine: {health.remedy_line}"
                self._finish(slot, Finished(mid, RunState.SKIPPED, error=reason))
        with _heap_frozen(len(self._slots)):
            self._fill()
            try:
                await self._done.wait()
            except asyncio.CancelledError:
                # The caller went away (Ctrl-C): stop the remote processes before leaving.
                self.cancel_all("run interrupted")
                await asyncio.shield(self._wait_tasks())
                self._complete()
                raise
        return self.run

    def cancel(self, machine_id: MachineId) -> None:
        """Cancel one machine: a pending one never starts, a running one is stopped."""
        slot = self._slots[machine_id]
        if slot.finished:
            return
        slot.cancel_requested = True
        if slot.task is None:
            with contextlib.suppress(ValueError):
                self._queue.remove(machine_id)
            self._finish(
                slot, Finished(machine_id, RunState.CANCELED, error="canceled before start")
            )
            self._maybe_complete()
        else:
            slot.task.cancel()

    def cancel_all(self, reason: str = "run canceled") -> None:
        """Stop the run: running machines are canceled, the rest never start."""
        if not self._stop_reason:
            self._stop_reason = reason
        for slot in self._slots.values():
            if slot.task is not None and not slot.finished:
                slot.cancel_requested = True
                slot.task.cancel()
        self._fill()

    # -- scheduling ---------------------------------------------------------------------

    def _can_start(self) -> bool:
        if self._stop_reason or self._running >= self._limit:
            return False
        if self._wave_size < self._limit:
            return self._wave_started < self._wave_size
        return True

    def _fill(self) -> None:
        while self._queue and self._can_start():
            slot = self._slots[self._queue.popleft()]
            self._running += 1
            self._wave_started += 1
            task = asyncio.create_task(
                self._drive(slot), name=f"fleetrun:{slot.machine_run.machine.name}"
            )
            task.add_done_callback(functools.partial(self._on_machine_done, slot))
            slot.task = task
        if self._stop_reason and self._queue:
            while self._queue:
                slot = self._slots[self._queue.popleft()]
                error = f"not started: {self._stop_reason}"
                self._finish(
                    slot, Finished(slot.machine_run.machine_id, RunState.NOT_STARTED, error=error)
                )
        self._maybe_complete()

    def _on_machine_done(self, slot: _Slot, _task: object = None) -> None:
        if not slot.finished:
            # Canceled before _drive took its first step, or by the whole run going away.
            mr = slot.machine_run
            error = "canceled before start" if mr.started is None else "canceled"
            self._finish(slot, Finished(mr.machine_id, RunState.CANCELED, error=error))
        self._running -= 1
        if self._wave_size < self._limit:
            self._wave_done += 1
            if self._wave_done >= self._wave_size:
                self._wave_size = min(self._wave_size * 2, self._limit)
                self._wave_started = self._wave_done = 0
        self._fill()

    def _maybe_complete(self) -> None:
        if self._done is None or self._done.is_set():
            return
        if not self._queue and self._running == 0:
            self._complete()

    def _complete(self) -> None:
        if self.run.ended is not None:
            return
        self.run.ended = utc_now()
        self.output.close()
        # A run whose output could not be kept says so where its end is reported.
        self._stop_reason = "; ".join(
            r for r in (self._stop_reason, self.output.write_problem()) if r)
        self.run.stop_reason = self._stop_reason
        self._publish(RunFinished(self.run.run_id, self.run.summary(), self._stop_reason))
        for sub in self._subscribers:
            sub.close()
        if self._done is not None:
            self._done.set()

    async def _wait_tasks(self) -> None:
        tasks = [s.task for s in self._slots.values() if s.task is not None and not s.task.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- one machine --------------------------------------------------------------------

    async def _drive(self, slot: _Slot) -> None:
        mr = slot.machine_run
        command, machine = mr.command, mr.machine
        deadline = command.timeout + self.options.grace if command.timeout > 0 else None
        loop = asyncio.get_running_loop()
        rearmed = False
        try:
            async with asyncio.timeout(deadline) as scope:
                events = self._events(slot.backend, machine, command)
                try:
                    async for event in events:
                        if not rearmed and deadline is not None and isinstance(
                            event, StateChanged
                        ):
                            # The clock starts when the command reached the machine: a wait
                            # for the service's throttle budget before that is not its time.
                            rearmed = True
                            scope.reschedule(loop.time() + deadline)
                        self._apply(slot, event)
                        if slot.finished:
                            break
                finally:
                    try:
                        if (slot.finished and self.before_cleanup is not None
                                and isinstance(slot.backend, ReattachableBackend)):
                            await self.before_cleanup(machine.id)
                    except Exception as exc:  # the machine's result stands all the same
                        log.warning("%s: its end could not be made durable before its "
                                    "clean-up: %s", machine.name, exc)
                    finally:
                        # Even when the journal could not say so (or a timeout or cancel
                        # came meanwhile), the backend still cleans up: a run command left
                        # behind takes one of a VM's 25 slots.
                        aclose = getattr(events, "aclose", None)
                        if aclose is not None:
                            await aclose()
        except TimeoutError:
            unstopped = await self._stop_remote(slot)
            self._finish(
                slot,
                Finished(
                    machine.id,
                    RunState.TIMED_OUT,
                    exit_code=-1,
                    error=f"no result within the {command.timeout} s "
                    f"timeout (+{self.options.grace:g} s grace)"
                    + (f"; last report: {slot.last_report}" if slot.last_report else "")
                    + unstopped,
                ),
            )
        except asyncio.CancelledError:
            if not slot.cancel_requested:
                raise
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            unstopped = await self._stop_remote(slot)
            self._finish(
                slot,
                Finished(
                    machine.id, RunState.CANCELED, exit_code=None,
                    error="canceled by the user" + unstopped,
                ),
            )
        except Exception as exc:  # a backend bug must fail one machine, not the run
            # The log is a file too: the message (and so the traceback) may quote a secret.
            log.error("backend failed for %s\n%s", machine.name,
                      slot.redaction.message("".join(traceback.format_exception(exc))).rstrip())
            self._finish(
                slot,
                Finished(
                    machine.id, RunState.FAILED, error=f"backend error: {type(exc).__name__}: {exc}"
                ),
            )
        if not slot.finished:
            self._finish(
                slot, Finished(machine.id, RunState.FAILED, error="backend ended without a result")
            )

    def _events(
        self, backend: Backend, machine: Machine, command: Command
    ) -> AsyncIterator[MachineEvent]:
        if not self.reattach:
            return backend.run(machine, command, run_id=self.run.run_id)
        if not isinstance(backend, ReattachableBackend):
            raise TypeError(f"{machine.kind.value} machines cannot be re-attached: their runs "
                            "ended with the process that started them")
        return backend.attach(machine, command, run_id=self.run.run_id,
                              if_missing=self.if_missing.get(machine.id, IfMissing.REPORT))

    async def _stop_remote(self, slot: _Slot) -> str:
        """Stop the machine's script; what to add to its result when that failed (a backend
        that cannot stop a script says why: the action API's)."""
        machine = slot.machine_run.machine
        try:
            async with asyncio.timeout(self.options.cancel_timeout):
                await slot.backend.cancel(machine, self.run.run_id)
        except Exception as exc:
            log.warning("cancel on %s failed: %s", machine.name,
                        slot.redaction.message(str(exc)))
            slot.machine_run.error = slot.redaction.error(f"cancel not confirmed: {exc}")
            return f"; cancel not confirmed: {exc}"
        return ""

    def _apply(self, slot: _Slot, event: Event) -> None:
        mr = slot.machine_run
        if slot.finished:
            return
        if isinstance(event, OutputAppended):
            self._store(slot, event.stream,
                        slot.redaction.output(event.stream, event.offset, event.data), event)
        elif isinstance(event, TailUpdated):
            tail = slot.redaction.tail(event.tail)
            self.output.report_tail(mr.machine_id, event.stream, tail)
            self._publish(event if tail is event.tail else
                          TailUpdated(event.machine_id, event.stream, tail))
        elif isinstance(event, WaitChanged):
            if mr.state is RunState.PENDING and mr.waiting is not event.waiting:
                mr.waiting = event.waiting
                self._publish(event)
        elif isinstance(event, StateChanged):
            message = slot.redaction.message(event.message)
            slot.last_report = message
            mr.waiting = None  # whatever it reports now, its start request has gone
            if event.state is RunState.RUNNING and mr.started is None:
                mr.started = event.at
            mr.state = event.state
            self._publish(event if message == event.message else
                          StateChanged(event.machine_id, event.state, message, event.at))
        elif isinstance(event, Finished):
            self._finish(slot, event)

    def _store(self, slot: _Slot, stream: Stream, masked: LetThrough,
               event: OutputAppended | None = None) -> None:
        """Store bytes let through by the machine's redaction, and publish them.

        Subscribers get the bytes stored, at their offset in the stored output.
        """
        mr = slot.machine_run
        offset = self.output.stream(mr.machine_id, stream).size
        data = masked.data
        written = self.output.append(mr.machine_id, stream, data, before=masked.before,
                                     after=masked.after)
        if stream is Stream.STDOUT:
            mr.stdout_bytes += written
        else:
            mr.stderr_bytes += written
        mr.masked = slot.redaction.masked
        if not written:
            return
        if event is not None and event.data is data and event.offset == offset:
            self._publish(event)
        else:
            self._publish(OutputAppended(mr.machine_id, stream, offset, data))

    def _finish(self, slot: _Slot, event: Finished) -> None:
        mr = slot.machine_run
        slot.finished = True
        mr.waiting = None
        for stream in _STREAMS:
            # What was held back as a possible start of a secret was not one.
            rest = slot.redaction.end(stream)
            if rest.moved:
                self._store(slot, stream, rest)
        mr.state = event.state
        mr.exit_code = event.exit_code
        if event.started is not None:
            mr.started = event.started
        if mr.state not in (RunState.SKIPPED, RunState.NOT_STARTED):
            mr.ended = event.ended or utc_now()
        mr.error = slot.redaction.error(event.error) if event.error else mr.error
        mr.masked = slot.redaction.masked
        self.output.finish(mr.machine_id)
        if event.state.counts_as_failure:
            self._failures += 1
            if (
                self._budget is not None
                and self._failures >= self._budget
                and not self._stop_reason
            ):
                self._stop_reason = (
                    f"error budget spent: {self._failures} of {self._runnable_total} machines "
                    f"failed (budget {self._budget})"
                )
        self._publish(
            Finished(mr.machine_id, mr.state, mr.exit_code, mr.started, mr.ended, mr.error)
        )

    def _publish(self, event: Event) -> None:
        for sub in self._subscribers:
            sub.put(event)
