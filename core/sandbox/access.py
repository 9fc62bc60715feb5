"""Who the sandbox answers: holders of its secrets, addressing it by its own loopback name.

The sandbox runs scripts as the user who started it, so, like Azurite and ARM, it is a
service with secrets rather than an open port: a bearer token for ARM calls and an account
key for blob SAS, both random per process unless the operator supplies them. Every request
must also name the sandbox's own address in ``Host``: a web page whose DNS name is rebound
to 127.0.0.1 sends its own name there, and is refused before any other work.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from dataclasses import dataclass, field

TOKEN_BYTES = 32
ACCOUNT_KEY_BYTES = 64
"""Azure storage account keys are 64 random bytes, base64-encoded."""


def new_token() -> str:
    """A fresh bearer token, URL- and header-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_account_key() -> str:
    """A fresh storage account key for signing and checking SAS tokens."""
    return base64.b64encode(secrets.token_bytes(ACCOUNT_KEY_BYTES)).decode("ascii")


def loopback_hosts(port: int) -> frozenset[str]:
    """The ``Host`` values that name a server on loopback ``port``."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


@dataclass(frozen=True, slots=True)
class Access:
    """The token a caller must present and the host names it may address the sandbox by.

    Args:
        token: The bearer token; kept out of ``repr``.
        hosts: Accepted ``Host`` header values, lowercase (see :func:`loopback_hosts`).
    """

    token: str = field(repr=False)
    hosts: frozenset[str]

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("the sandbox's bearer token must not be empty")

    def accepts_token(self, presented: str) -> bool:
        # Constant time: how much of a guess matched must not show in the answer's timing.
        return hmac.compare_digest(presented.encode("utf-8"), self.token.encode("utf-8"))

    def accepts_host(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts

    def host_refusal(self, host: str | None) -> str:
        """Why a request with this ``Host`` is refused, naming what is allowed."""
        shown = "no Host header" if host is None else f"the Host header {host!r}"
        return (f"The sandbox refused {shown}: it answers only requests addressed to "
                f"{', '.join(sorted(self.hosts))} (a guard against DNS rebinding).")
