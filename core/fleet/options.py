"""Choices the user makes for a whole fleet, whatever its sources."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """Choices the user makes for a whole fleet, whatever its sources.

    Attributes:
        accept_new_host_keys: Trust (and record in known_hosts) SSH host keys not seen
            before; changed keys are refused regardless.
        connect_timeout: Seconds each SSH host gets to connect and log in; None: the ssh
            config's ConnectTimeout, else 15.
    """

    accept_new_host_keys: bool = False
    connect_timeout: float | None = None
