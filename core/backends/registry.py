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

    def for_machine(self, machine: Machine) -> Backend:
        backend = self._backends.get(machine.kind)
        if backend is None:
            if machine.kind is not MachineKind.LOCAL:
                raise LookupError(f"no backend for {machine.kind.value} machines yet")
            backend = self._backends[machine.kind] = LocalBackend()
        return backend

    async def refresh_health(self, machines: Sequence[Machine]) -> list[Machine]:
        """The machines with health as their backends see it now, checked concurrently."""
        by_kind: dict[MachineKind, list[Machine]] = {}
        for machine in machines:
            by_kind.setdefault(machine.kind, []).append(machine)
        results = await asyncio.gather(
            *(self.for_machine(group[0]).check_health(group) for group in by_kind.values())
        )
        health = {mid: h for result in results for mid, h in result.items()}
        return [m.with_health(health[m.id]) if m.id in health else m for m in machines]
