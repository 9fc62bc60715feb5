"""The ``sandbox`` fleet source: the emulated Azure fleet, run inside this process."""

from __future__ import annotations

from pathlib import Path

from core.inventory.sources import FleetError, FleetSource
from core.model import MachineKind
from core.sandbox.embedded import EmbeddedBackend, machines_of
from core.sandbox.fleet import FleetFileError, default_fleet, load_fleet
from core.sandbox.service import SandboxService


def sandbox_source(spec: str) -> FleetSource:
    """``sandbox`` (the built-in demo fleet) or ``sandbox:FILE`` (a fleet file)."""
    _, _, path = spec.partition(":")
    try:
        fleet = load_fleet(Path(path).expanduser()) if path.strip() else default_fleet()
    except FleetFileError as exc:
        raise FleetError(f"fleet {spec!r}: {exc}") from None
    service = SandboxService(fleet)
    backend = EmbeddedBackend(service)
    return FleetSource(
        spec,
        lambda: machines_of(service),
        backends={MachineKind.VM: backend, MachineKind.ARC: backend},
        aclose=service.aclose,
    )
