"""asyncssh's log calls, made free when nothing listens (about 0.3 ms of CPU per host).

asyncssh formats every log call's arguments (host tuples, byte strings, lists of
algorithms) before :mod:`logging` checks the level, some 30 times per connection and run,
and names and sizes every packet it sends or receives for a packet log that only its debug
level 3 writes. With fleetrun's logging (asyncssh at WARNING) all of that is thrown away.
:func:`skip_unheard_logging` makes both check first; what is logged when a level is enabled
is exactly what asyncssh would log.
"""

from __future__ import annotations

from typing import Any

from asyncssh.logging import SSHLogger
from asyncssh.packet import SSHPacketLogger

_PACKET_LOG_LEVEL = 3
"""asyncssh's debug level at which packets are logged (``set_debug_level``)."""


def skip_unheard_logging() -> None:
    """Patch asyncssh's logger once (idempotent)."""
    if getattr(SSHLogger.log, "_fleetrun_checks_level", False):
        return
    format_and_log = SSHLogger.log
    log_packet = SSHPacketLogger._log_packet

    def log(self: SSHLogger, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            format_and_log(self, level, msg, *args, **kwargs)

    def _log_packet(self: SSHPacketLogger, *args: Any) -> None:
        if SSHLogger._debug_level >= _PACKET_LOG_LEVEL:
            log_packet(self, *args)

    log._fleetrun_checks_level = True  # type: ignore[attr-defined]
    SSHLogger.log = log  # type: ignore[method-assign]
    SSHPacketLogger._log_packet = _log_packet  # type: ignore[method-assign, assignment]
