"""Fleets: ``--fleet`` values resolved to machines and the backends that reach them.

The wiring layer: inventories (:mod:`core.inventory`) only list machines, backends
(:mod:`core.backends`) only run commands; a fleet source says where machines come from and
what reaching them takes, and :func:`open_fleet` opens one backend per machine kind through
:mod:`core.fleet.registry`. Nothing in this package imports it through this ``__init__``.
"""

from core.fleet.default_fleet import DEFAULT_FLEET
from core.fleet.fleet import Fleet, open_fleet
from core.fleet.options import FleetOptions
from core.fleet.routing import Backends
from core.fleet.source import FleetError, FleetSource
from core.fleet.sources import resolve_fleet

__all__ = [
    "DEFAULT_FLEET",
    "Backends",
    "Fleet",
    "FleetError",
    "FleetOptions",
    "FleetSource",
    "open_fleet",
    "resolve_fleet",
]
