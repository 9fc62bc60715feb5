"""Host keys a backend refused, in terms any backend with host keys can use (no SSH library).

A host whose key the trusted-keys file (known_hosts) does not vouch for is refused: its key
is *unknown* (the user may review and trust it) or *changed* (never trusted from fleetrun).
:class:`core.backends.base.HostKeyCheckingBackend` is how a front end asks about them.
"""

from __future__ import annotations

import enum
import shlex
from dataclasses import dataclass
from pathlib import Path

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
"""Where ``ssh-keygen -R`` edits when given no ``-f``."""


class KeyVerdict(enum.StrEnum):
    UNKNOWN = "unknown"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class HostKeyProblem:
    """A host key that known_hosts does not vouch for.

    Attributes:
        host: The host name as connected to.
        port: Its port.
        verdict: Unknown (never seen) or changed (known_hosts has other keys for it).
        fingerprint: SHA256 fingerprint of the key the server presented.
        key_line: The known_hosts line that would trust the presented key.
        known_fingerprints: Fingerprints known_hosts has for the host (changed keys only).
    """

    host: str
    port: int
    verdict: KeyVerdict
    fingerprint: str
    key_line: str
    known_fingerprints: tuple[str, ...] = ()
    record_file: str = ""
    """The host's first user known_hosts file, where trusting the key records it ("" when
    its UserKnownHostsFile is none)."""
    old_key_files: tuple[str, ...] = ()
    """The known_hosts files holding the keys it contradicts (changed keys only)."""

    @property
    def where(self) -> str:
        return host_pattern(self.host, self.port)

    def removal_commands(self) -> list[str]:
        """How to drop the old keys: ``ssh-keygen -R`` on each file that holds them."""
        return [removal_command(self.where, file)
                for file in self.old_key_files or (self.record_file,)]

    def message(self) -> str:
        if self.verdict is KeyVerdict.CHANGED:
            return (f"host key of {self.where} CHANGED: it presented {self.fingerprint}, "
                    f"known_hosts has {', '.join(self.known_fingerprints)}; refused (if the "
                    "change is expected, remove the old key with "
                    f"{' and '.join(f'`{c}`' for c in self.removal_commands())})")
        return (f"unknown host key for {self.where} ({self.fingerprint}); not in known_hosts "
                "(review it with `fleetrun hostkeys scan`, then `fleetrun hostkeys trust`; or "
                "run with --accept-new-host-keys to trust and record it)")


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def removal_command(where: str, known_hosts: str | Path = "") -> str:
    """``ssh-keygen -R`` for a host (``[host]:port`` quoted for the shell) in one file; its
    ``-f`` only when the file is not ssh-keygen's default, ``~/.ssh/known_hosts``."""
    command = f"ssh-keygen -R {shlex.quote(where)}"
    if known_hosts and Path(known_hosts).expanduser() != DEFAULT_KNOWN_HOSTS.expanduser():
        command += f" -f {shlex.quote(str(known_hosts))}"
    return command
