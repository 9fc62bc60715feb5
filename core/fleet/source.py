"""A fleet source: where some machines come from, and what reaching them takes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from core.errors import BadInputError
from core.model import Machine, MachineKind


class FleetError(BadInputError, ValueError):
    """A ``--fleet`` value that names no known source, or sources that cannot go together."""


async def nothing_to_close() -> None:
    """The ``aclose`` of what holds nothing open."""
    return None


@dataclass(frozen=True, slots=True)
class FleetSource:
    """One ``--fleet`` value, resolved: how to list its machines and how to reach them.

    Attributes:
        spec: The ``--fleet`` value, for messages.
        load: Lists the machines (the inventory's work).
        reach: What a backend needs to reach this source's machines, by machine kind (an
            Azure session for VMs and Arc servers, an ssh config for SSH hosts, None when
            nothing is needed). The fleet opens one backend per kind for all its sources,
            through that kind's entry in :mod:`core.fleet.registry`.
        aclose: Releases what the source started (inside the event loop that used it).
    """

    spec: str
    load: Callable[[], Awaitable[list[Machine]]]
    reach: Mapping[MachineKind, object] = field(default_factory=dict)
    aclose: Callable[[], Awaitable[None]] = nothing_to_close
