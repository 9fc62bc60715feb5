"""Who the sandbox answers: holders of its secrets, addressing it by its own loopback name.

The sandbox runs scripts as the user who started it, so, like Azurite and ARM, it is a
service with secrets rather than an open port: a bearer token for ARM calls and an account
key for blob SAS, both random per process unless the operator supplies them. Every request
must also name the sandbox's own address in ``Host``: a web page whose DNS name is rebound
to 127.0.0.1 sends its own name there, and is refused before any other work.

The token says who calls (ARM's principal, whose throttle buckets a call spends): the
sandbox's own token is :data:`DEFAULT_PRINCIPAL`; a fleet file's ``[[principals]]`` add
callers with tokens of their own.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

TOKEN_BYTES = 32
ACCOUNT_KEY_BYTES = 64
"""Azure storage account keys are 64 random bytes, base64-encoded."""
DEFAULT_PRINCIPAL = "sandbox"
"""Who the sandbox's own token belongs to (the actor its 429 messages name)."""
MIN_TOKEN_LENGTH = 16
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
"""RFC 6750's b64token: what a bearer token may hold."""


def is_bearer_token(value: str) -> bool:
    """Whether ``value`` can be presented as ``Authorization: Bearer <value>`` and is not
    trivially short."""
    return len(value) >= MIN_TOKEN_LENGTH and _B64TOKEN.fullmatch(value) is not None


def new_token() -> str:
    """A fresh bearer token, URL- and header-safe."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_account_key() -> str:
    """A fresh storage account key for signing and checking SAS tokens."""
    return base64.b64encode(secrets.token_bytes(ACCOUNT_KEY_BYTES)).decode("ascii")


def check_principals(token: str, principals: Mapping[str, str]) -> None:
    """Refuse a fleet principal that holds the sandbox's own token: whose calls would it be?

    Raises:
        ValueError: Naming the principal (never the token).
    """
    for name, theirs in principals.items():
        if hmac.compare_digest(theirs.encode("utf-8"), token.encode("utf-8")):
            raise ValueError(f"the fleet file's principal {name!r} has the sandbox's own "
                             "token; give it a token of its own")


def loopback_hosts(port: int) -> frozenset[str]:
    """The ``Host`` values that name a server on loopback ``port``."""
    return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})


@dataclass(frozen=True, slots=True)
class Access:
    """The token a caller must present and the host names it may address the sandbox by.

    Args:
        token: The sandbox's own bearer token (:data:`DEFAULT_PRINCIPAL`'s); kept out of
            ``repr``.
        hosts: Accepted ``Host`` header values, lowercase (see :func:`loopback_hosts`).
        principals: Further callers, token by principal name (a fleet file's
            ``[[principals]]``); kept out of ``repr``.
    """

    token: str = field(repr=False)
    hosts: frozenset[str]
    principals: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("the sandbox's bearer token must not be empty")
        check_principals(self.token, self.principals)

    def principal(self, presented: str) -> str | None:
        """Whose token ``presented`` is, or None for a token no one holds."""
        found = None
        # Every token is compared, in constant time: how much of a guess matched, or whose
        # token it resembled, must not show in the answer's timing.
        for name, token in ((DEFAULT_PRINCIPAL, self.token), *self.principals.items()):
            if hmac.compare_digest(presented.encode("utf-8"), token.encode("utf-8")):
                found = name
        return found

    def accepts_token(self, presented: str) -> bool:
        return self.principal(presented) is not None

    def accepts_host(self, host: str | None) -> bool:
        return host is not None and host.lower() in self.hosts

    def host_refusal(self, host: str | None) -> str:
        """Why a request with this ``Host`` is refused, naming what is allowed."""
        shown = "no Host header" if host is None else f"the Host header {host!r}"
        return (f"The sandbox refused {shown}: it answers only requests addressed to "
                f"{', '.join(sorted(self.hosts))} (a guard against DNS rebinding).")
