"""``--fleet local``: this machine, reached by running the script here."""

from __future__ import annotations

from collections.abc import Sequence

from core.fleet.opened_backend import OpenedBackend, SourceReach
from core.fleet.options import FleetOptions
from core.fleet.source import FleetSource
from core.inventory.local import local_machine
from core.model import Machine, MachineKind


def local_source(spec: str) -> FleetSource:
    async def load() -> list[Machine]:
        return [local_machine()]

    return FleetSource(spec, load, reach={MachineKind.LOCAL: None})


def open_local_backend(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    from core.backends.local import LocalBackend

    return OpenedBackend(LocalBackend())
