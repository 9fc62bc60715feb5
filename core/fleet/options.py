"""Choices the user makes for a whole fleet, whatever its sources."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.inventory.host_list import HostDefaults


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """Choices the user makes for a whole fleet, whatever its sources.

    Attributes:
        accept_new_host_keys: Trust (and record in known_hosts) SSH host keys not seen
            before; changed keys are refused regardless.
        host_defaults: Login name, key and port of ad-hoc hosts (``ssh:HOSTS``) whose
            names do not give them.
        connect_timeout: Seconds each SSH host gets to connect and log in; None: the ssh
            config's ConnectTimeout, else 15.
    """

    accept_new_host_keys: bool = False
    become_method: str = ""
    """``--become-method``: sudo or su on every SSH host; "" leaves it to the inventory."""
    host_defaults: HostDefaults = field(default_factory=HostDefaults)
    connect_timeout: float | None = None
