"""Where machines come from: one small module per kind of fleet source."""

from core.inventory.sources import (
    DEFAULT_FLEET,
    Fleet,
    FleetError,
    FleetOptions,
    FleetSource,
    open_fleet,
    resolve_fleet,
)

__all__ = [
    "DEFAULT_FLEET",
    "Fleet",
    "FleetError",
    "FleetOptions",
    "FleetSource",
    "open_fleet",
    "resolve_fleet",
]
