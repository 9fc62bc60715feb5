"""Bearer tokens for ARM and Storage: azure-identity for real tenants, the sandbox's own for it.

``DefaultAzureCredential`` tries, in order, environment service principals, workload identity,
managed identity and the Azure CLI's login (``az login``). Its synchronous flavour runs in a
worker thread so that the async core needs no extra HTTP stack; tokens are cached per scope
and refreshed a few minutes before they expire, so concurrent requests share one fetch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from core.errors import ServiceError

ARM_SCOPE = "https://management.azure.com/.default"
STORAGE_SCOPE = "https://storage.azure.com/.default"
REFRESH_MARGIN = 300.0
"""Seconds before expiry at which a cached token is replaced."""


_PRINCIPAL_CLAIMS = ("oid", "appid", "sub")
"""Where an Entra access token names its caller: the object id of the user or service
principal (``oid``), else the application (``appid``), else the subject (``sub``)."""
_CLAIM_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,127}$")


def principal_of(token: str) -> str:
    """Who an access token is for (ARM's throttle principal), or '' when it does not say.

    Reads the JWT's payload without verifying it: it only names the throttle scope the
    client paces for, and the service checks the token anyway. An opaque token (the
    sandbox's), a malformed one or one without the claims is ''. Never logs or returns
    any part of the token but the claim.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return ""
    if not isinstance(claims, dict):
        return ""
    for claim in _PRINCIPAL_CLAIMS:
        value = claims.get(claim)
        if isinstance(value, str) and _CLAIM_VALUE.match(value):
            return value.lower()
    return ""


class AuthError(ServiceError):
    """No credential could produce a token; the message says what to set up."""

    service = "azure"


@runtime_checkable
class TokenSource(Protocol):
    """Anything that hands out bearer tokens for a scope."""

    async def token(self, scope: str) -> str: ...


@dataclass(frozen=True, slots=True)
class StaticToken:
    """One token for every scope: the sandbox's secret (its own random one, or
    ``$FLEETRUN_SANDBOX_TOKEN`` for ``fleetrun sandbox serve``); never shown in ``repr``."""

    value: str

    async def token(self, scope: str) -> str:
        return self.value

    def __repr__(self) -> str:
        return "StaticToken(***)"


@dataclass(slots=True)
class _Cached:
    value: str
    expires_on: float


class IdentityTokens:
    """Tokens from azure-identity's ``DefaultAzureCredential`` (or any credential like it).

    Args:
        credential: An object with azure-core's ``get_token(scope)``; the default chain when
            None. Tests pass a fake.
    """

    def __init__(self, credential: Any | None = None) -> None:
        self._credential = credential
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _default_credential(self) -> Any:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential  # imported only when used

            self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        return self._credential

    async def token(self, scope: str) -> str:
        cached = self._cache.get(scope)
        if cached is not None and cached.expires_on - time.time() > REFRESH_MARGIN:
            return cached.value
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:
            cached = self._cache.get(scope)
            if cached is not None and cached.expires_on - time.time() > REFRESH_MARGIN:
                return cached.value
            fresh = await asyncio.to_thread(self._fetch, scope)
            self._cache[scope] = fresh
            return fresh.value

    def _fetch(self, scope: str) -> _Cached:
        try:
            access = self._default_credential().get_token(scope)
        except Exception as exc:  # azure-identity raises several types; all mean "no token"
            text = str(exc).strip()
            first_line = text.splitlines()[0] if text else type(exc).__name__
            raise AuthError(
                f"azure: no credential could get a token for {scope} ({first_line}); "
                "run `az login`, or set AZURE_CLIENT_ID, AZURE_TENANT_ID and "
                "AZURE_CLIENT_SECRET for a service principal, or run on a managed identity"
            ) from None
        return _Cached(access.token, float(access.expires_on))
