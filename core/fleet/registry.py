"""Which backend reaches which kind of machine: one entry per kind.

Adding a way to reach machines is an entry here, its module under :mod:`core.backends`,
and its entry in the backend contract suite (``tests/contract``). Each opener imports its
backend only when a fleet has such machines.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.fleet.opened_backend import BackendOpener, OpenedBackend, SourceReach
from core.fleet.options import FleetOptions
from core.model import MachineKind


def _local(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    from core.fleet.local import open_local_backend

    return open_local_backend(reaches, options)


def _ssh(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    from core.fleet.ssh import open_ssh_backend

    return open_ssh_backend(reaches, options)


def _compute(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    from core.fleet.azure import open_compute_backend

    return open_compute_backend(reaches, options)


def _arc(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    from core.fleet.azure import open_arc_backend

    return open_arc_backend(reaches, options)


BACKEND_OPENERS: dict[MachineKind, BackendOpener] = {
    MachineKind.LOCAL: _local,
    MachineKind.SSH: _ssh,
    MachineKind.VM: _compute,
    MachineKind.ARC: _arc,
}
"""The opener of each machine kind's backend."""
