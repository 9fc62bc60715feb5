"""``--fleet ssh:HOSTS`` (and the CLI's ``--hosts``): SSH hosts from a node set.

The hosts are read when the value is resolved, so a mistake in the node set stops the
command before anything connects; they are reached by the fleet's one SSH backend with the
default ssh config (:mod:`core.fleet.ssh`).
"""

from __future__ import annotations

from core.fleet.options import FleetOptions
from core.fleet.source import FleetError, FleetSource
from core.fleet.ssh import SshReach
from core.inventory.errors import InventoryError
from core.inventory.host_list import load_host_list
from core.model import Machine, MachineKind


def ad_hoc_source(spec: str, options: FleetOptions) -> FleetSource:
    """``ssh:HOSTS``: the hosts of a node set, with the options' login defaults."""
    _, _, text = spec.partition(":")
    try:
        machines = load_host_list(text.strip(), options.host_defaults)
    except InventoryError as exc:
        raise FleetError(str(exc)) from None

    async def load() -> list[Machine]:
        return list(machines)

    return FleetSource(spec, load, reach={MachineKind.SSH: SshReach()})
