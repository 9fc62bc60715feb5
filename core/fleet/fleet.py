"""A fleet: the machines of some ``--fleet`` values and the backends that reach them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from core.backends.base import Backend
from core.fleet.opened_backend import SourceReach
from core.fleet.options import FleetOptions
from core.fleet.registry import BACKEND_OPENERS
from core.fleet.routing import Backends
from core.fleet.source import FleetError, FleetSource
from core.fleet.sources import resolve_fleet
from core.model import Machine, MachineKind


@dataclass(slots=True)
class Fleet:
    """The machines of some ``--fleet`` values, and what it takes to reach them."""

    machines: list[Machine]
    backends: Backends
    sources: list[FleetSource]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """What the fleet itself opened (its backends), closed before the sources."""

    async def aclose(self) -> None:
        try:
            for close in reversed(self.closers):
                await close()
        finally:
            for source in self.sources:
                await source.aclose()


async def open_fleet(specs: Sequence[str], options: FleetOptions | None = None) -> Fleet:
    """Machines of every source, in order (a machine listed twice is kept once), and one
    backend per kind of machine they bring.

    The fleet must be closed (``aclose``) in the same event loop, even when this fails.

    Raises:
        FleetError: a value names no source, or sources clash.
        core.errors.FleetrunError: a source cannot be listed (its own error, e.g. an
            inventory's or Azure's).
    """
    sources: list[FleetSource] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        for spec in specs:
            sources.append(resolve_fleet(spec, options))
        reaches: dict[MachineKind, list[SourceReach]] = {}
        for source in sources:
            for kind, reach in source.reach.items():
                reaches.setdefault(kind, []).append(SourceReach(source.spec, reach))
        backends: dict[MachineKind, Backend] = {}
        for kind, needed in reaches.items():
            opener = BACKEND_OPENERS.get(kind)
            if opener is None:
                raise FleetError(f"fleet: {needed[0].spec!r} brings {kind.value} machines, "
                                 "which no backend reaches")
            opened = opener(needed, options or FleetOptions())
            backends[kind] = opened.backend
            closers.append(opened.aclose)
        seen: dict[str, Machine] = {}
        for source in sources:
            for machine in await source.load():
                seen.setdefault(machine.id, machine)
    except BaseException:
        await Fleet([], Backends(), sources, closers).aclose()
        raise
    return Fleet(list(seen.values()), Backends(backends), sources, closers)
