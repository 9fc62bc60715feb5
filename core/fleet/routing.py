"""Which of a fleet's backends reaches a machine, and every machine's health at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

from core.backends.base import Backend, RunCheckedBackend
from core.model import Machine, MachineKind


class Backends:
    """A fleet's backends, one per machine kind (:mod:`core.fleet.registry` opens them)."""

    def __init__(self, by_kind: dict[MachineKind, Backend] | None = None) -> None:
        self._backends: dict[MachineKind, Backend] = dict(by_kind or {})

    def get(self, kind: MachineKind) -> Backend | None:
        """The backend of ``kind`` machines, or None when this fleet has none."""
        return self._backends.get(kind)

    def __iter__(self) -> Iterator[Backend]:
        """Each backend once."""
        return iter(self._backends.values())

    def kinds(self) -> list[MachineKind]:
        """The kinds of machine this fleet can reach."""
        return list(self._backends)

    def for_machine(self, machine: Machine) -> Backend:
        backend = self.get(machine.kind)
        if backend is None:
            raise LookupError(f"no backend for {machine.kind.value} machines yet")
        return backend

    async def refresh_health(self, machines: Sequence[Machine], *,
                             before_run: bool = False) -> list[Machine]:
        """The machines with health as their backends see it now, checked concurrently.

        Machines of a kind no backend reaches (yet) keep the health their inventory gave
        them, so they can still be listed. ``before_run``: the run comes next, so a backend
        whose run reports an unhealthy machine itself (:class:`RunCheckedBackend`) only
        checks that it reaches each one.
        """
        by_kind: dict[MachineKind, list[Machine]] = {}
        for machine in machines:
            by_kind.setdefault(machine.kind, []).append(machine)
        checks = [
            backend.check_reachable(group)
            if before_run and isinstance(backend, RunCheckedBackend)
            else backend.check_health(group)
            for kind, group in by_kind.items()
            if (backend := self.get(kind)) is not None
        ]
        results = await asyncio.gather(*checks)
        health = {mid: h for result in results for mid, h in result.items()}
        return [m.with_health(health[m.id]) if m.id in health else m for m in machines]
