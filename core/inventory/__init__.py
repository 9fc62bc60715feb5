"""Where machines come from: one small module per kind of fleet source."""

from core.inventory.sources import FleetError, load_fleets, resolve_fleet

__all__ = ["FleetError", "load_fleets", "resolve_fleet"]
