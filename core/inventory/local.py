"""``--fleet local``: this machine, as a fleet of one."""

from __future__ import annotations

import socket

from core.model import Health, HealthStatus, Machine, MachineKind, OsType, utc_now


def local_machine() -> Machine:
    """This machine, as the ``local`` fleet's single target."""
    return Machine(
        id="local",
        name=socket.gethostname(),
        kind=MachineKind.LOCAL,
        os=OsType.LINUX,
        location="local",
        health=Health(HealthStatus.READY, "this machine", checked_at=utc_now()),
    )
