"""Which backend reaches which machine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from core.backends.base import Backend
from core.backends.local import LocalBackend
from core.model import Machine, MachineKind


class Backends:
    """One backend instance per machine kind, created on first use."""

    def __init__(self, overrides: dict[MachineKind, Backend] | None = None) -> None:
        self._backends: dict[MachineKind, Backend] = dict(overrides or {})

    def _find(self, kind: MachineKind) -> Backend | None:
        backend = self._backends.get(kind)
        if backend is None and kind is MachineKind.LOCAL:
            backend = self._backends[kind] = LocalBackend()
        return backend

    def for_machine(self, machine: Machine) -> Backend:
        backend = self._find(machine.kind)
        if backend is None:
            raise LookupError(f"no backend for {machine.kind.value} machines yet")
        return backend

    async def refresh_health(self, machines: Sequence[Machine]) -> list[Machine]:
        """The machines with health as their backends see it now, checked concurrently.

        Machines of a kind no backend reaches (yet) keep the health their inventory gave
        them, so they can still be listed.
        """
        by_kind: dict[MachineKind, list[Machine]] = {}
        for machine in machines:
            by_kind.setdefault(machine.kind, []).append(machine)
        checks = [
            backend.check_health(group)
            for kind, group in by_kind.items()
            if (backend := self._find(kind)) is not None
        ]
        results = await asyncio.gather(*checks)
        health = {mid: h for result in results for mid, h in result.items()}
        return [m.with_health(health[m.id]) if m.id in health else m for m in machines]
