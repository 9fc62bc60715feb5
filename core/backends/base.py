"""The backend contract every way of reaching a machine implements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from core.events import MachineEvent
from core.model import Command, Health, Machine, MachineId


@runtime_checkable
class Backend(Protocol):
    """Runs commands on machines of one kind.

    ``run`` yields a machine's events as they happen: ``StateChanged`` (Running first),
    ``OutputAppended`` for every byte of both streams in order, ``TailUpdated`` whenever the
    reported 4 KB tail changes (at least once before the end), and exactly one ``Finished``
    last. Cancelling the task iterating ``run`` must stop the remote process; ``cancel``
    does the same from outside and is safe to call at any time, more than once.
    """

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]: ...

    def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]: ...

    async def cancel(self, machine: Machine, run_id: str) -> None: ...


@runtime_checkable
class ReattachableBackend(Backend, Protocol):
    """A backend whose runs outlive fleetrun (a service keeps them): it can follow one again.

    ``attach`` yields the same events as ``run`` for a run that was started earlier (by a
    process that has since died), without starting anything. Output comes again from its
    start; the output store skips what it already holds.
    """

    def attach(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]: ...
