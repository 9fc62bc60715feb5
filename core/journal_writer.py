"""Follows one run's events and persists the run into the journal store as it goes.

Writes are batched: a machine's changes are coalesced for a short while (or until many
machines have changed) and each batch is one transaction in a worker thread, so the
engine's loop never waits on SQLite. What a batch committed survives a ``kill -9``
(:mod:`core.journal_store`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from core.events import Event, Finished, OutputAppended, RunFinished, RunStarted, StateChanged
from core.journal_store import Journal, MachineProgress
from core.model import MachineId, Run

log = logging.getLogger(__name__)


class JournalWriter:
    """Persists one run from the engine's event stream, in batches, off the event loop.

    Events only say which machines changed; the values written are taken from the live
    ``run.machines`` objects on the loop (:class:`MachineProgress`), so a batch is never
    torn by the engine changing a machine while a worker thread writes it. The run and its
    machines are recorded whole once, at the start; after that only what changes is.
    """

    def __init__(
        self,
        journal: Journal,
        run: Run,
        *,
        max_delay: float = 0.2,
        state_delay: float = 0.05,
        max_dirty: int = 500,
    ) -> None:
        """Set up a writer; nothing happens until :meth:`consume`.

        Args:
            journal: where to write.
            run: the live run the engine mutates.
            max_delay: longest wait before changed output byte counts are written.
            state_delay: how long state changes are coalesced before they are written.
            max_dirty: write at once when this many machines have changed.
        """
        self.journal = journal
        self.run = run
        self.max_delay = max_delay
        self.state_delay = state_delay
        self.max_dirty = max_dirty
        self.error: Exception | None = None
        """The last write failure, None once a write succeeds again."""
        self._dirty: dict[MachineId, None] = {}  # a set that keeps arrival order
        self._deadline: float | None = None
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._recorded = False
        self._closing = False

    async def consume(self, events: AsyncIterator[Event]) -> None:
        """Write the run as its events arrive; returns once its end is recorded."""
        flusher = asyncio.create_task(self._flush_loop(), name="fleetrun:journal-flush")
        finished: RunFinished | None = None
        try:
            async for event in events:
                if isinstance(event, RunStarted):
                    await self._flush()
                elif isinstance(event, RunFinished):
                    finished = event
                    break
                elif isinstance(event, StateChanged | Finished):
                    self._mark(event.machine_id, self.state_delay)
                elif isinstance(event, OutputAppended):
                    self._mark(event.machine_id, self.max_delay)
                if len(self._dirty) >= self.max_dirty:
                    await self._flush()  # also paces reading: events wait in the queue
        finally:
            self._closing = True
            self._wake.set()
            await flusher
        if finished is None and self.run.ended is None:
            # The stream stopped early: keep the run 'running'; once this process is
            # gone, readers show it as interrupted.
            await self._flush()
            return
        ended = self.run.ended or (finished.at if finished is not None else None)
        stop_reason = self.run.stop_reason or (finished.stop_reason if finished else "")
        async with self._write_lock:
            if not self._recorded:
                snapshot = _snapshot(self.run)
                snapshot.ended, snapshot.stop_reason = ended, stop_reason
                await self._write(self.journal.finish_run, snapshot)
                return
            # Every change since the last batch is in _dirty (a failed batch put its
            # machines back), so the end needs only those, not the whole run again.
            await self._write(self.journal.end_run, self.run.run_id, ended, stop_reason,
                              self._take_dirty())

    async def persist(self, machine_id: MachineId) -> None:
        """Write what the run knows of ``machine_id`` now (with any other pending change).

        A write that fails is kept for the next batch, as every write is.
        """
        self._dirty[machine_id] = None
        await self._flush()

    def _mark(self, machine_id: MachineId, delay: float) -> None:
        self._dirty[machine_id] = None
        due = time.monotonic() + delay
        if self._deadline is None or due < self._deadline:
            self._deadline = due
            self._wake.set()

    async def _flush_loop(self) -> None:
        while not self._closing:
            self._wake.clear()
            if self._deadline is None:
                await self._wake.wait()
                continue
            delay = self._deadline - time.monotonic()
            if delay > 0:
                # Woken early by an earlier deadline, or by closing.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            await self._flush()

    async def _flush(self) -> None:
        async with self._write_lock:
            self._deadline = None
            if not self._recorded:
                # The full record holds every machine, so it replaces any pending batch.
                self._dirty.clear()
                machines = self.run.machines
                progress = {mid: MachineProgress.of(mr) for mid, mr in machines.items()}
                run = replace(self.run, machines=dict(machines))
                self._recorded = await self._write(self.journal.record_run, run, progress)
                if not self._recorded:
                    self._deadline = time.monotonic() + self.max_delay
                return
            if not self._dirty:
                return
            progress_list = self._take_dirty()
            if not await self._write(self.journal.record_progress, self.run.run_id,
                                     progress_list):
                for p in progress_list:
                    self._dirty.setdefault(p.machine_id)
                self._deadline = time.monotonic() + self.max_delay

    def _take_dirty(self) -> list[MachineProgress]:
        machines = self.run.machines
        progress = [MachineProgress.of(machines[i]) for i in self._dirty if i in machines]
        self._dirty.clear()
        return progress

    async def _write(self, write: Callable[..., None], *args: Any) -> bool:
        try:
            await asyncio.to_thread(write, *args)
        except Exception as exc:
            # A full disk must not stop the run: keep going, retry, say it once.
            if self.error is None:
                log.exception("journal write for run %s failed", self.run.run_id)
            self.error = exc
            return False
        self.error = None
        return True


def _snapshot(run: Run) -> Run:
    return replace(run, machines={mid: replace(mr) for mid, mr in run.machines.items()})
