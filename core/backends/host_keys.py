"""Host keys a backend refused, in terms any backend with host keys can use (no SSH library).

A host whose key the trusted-keys file (known_hosts) does not vouch for is refused: its key
is *unknown* (the user may review and trust it) or *changed* (never trusted from fleetrun).
:class:`core.backends.base.HostKeyCheckingBackend` is how a front end asks about them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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

    def message(self) -> str:
        where = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        if self.verdict is KeyVerdict.CHANGED:
            return (f"host key of {where} CHANGED: it presented {self.fingerprint}, known_hosts "
                    f"has {', '.join(self.known_fingerprints)}; refused (if the change is "
                    "expected, remove the old key with `ssh-keygen -R`)")
        return (f"unknown host key for {where} ({self.fingerprint}); not in known_hosts "
                "(review it with `fleetrun hostkeys scan`, then `fleetrun hostkeys trust`; or "
                "run with --accept-new-host-keys to trust and record it)")


def host_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"
