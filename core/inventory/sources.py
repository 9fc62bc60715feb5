"""``--fleet`` values: parse one, load its machines.

Each source names where machines come from. Only ``local`` (this machine) exists so far;
the sandbox, Azure, ssh-config and inventory files plug in here as they arrive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.backends.local import local_machine
from core.model import Machine


class FleetError(ValueError):
    """A --fleet value that names no known source, or a source that failed to load."""


@dataclass(frozen=True, slots=True)
class FleetSource:
    spec: str
    load: Callable[[], list[Machine]]


_SOURCES: dict[str, Callable[[str], FleetSource]] = {
    "local": lambda spec: FleetSource(spec, lambda: [local_machine()]),
}


def resolve_fleet(spec: str) -> FleetSource:
    """The source a ``--fleet`` value names."""
    name = spec.split(":", 1)[0].strip().lower()
    factory = _SOURCES.get(name)
    if factory is None:
        allowed = ", ".join(sorted(_SOURCES))
        raise FleetError(f"fleet: unknown source {spec!r}; allowed: {allowed}")
    return factory(spec)


def load_fleets(specs: Sequence[str]) -> list[Machine]:
    """Machines of every source, in order; a machine listed twice is kept once."""
    seen: dict[str, Machine] = {}
    for spec in specs:
        for machine in resolve_fleet(spec).load():
            seen.setdefault(machine.id, machine)
    return list(seen.values())
