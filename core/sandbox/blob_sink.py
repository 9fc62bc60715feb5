"""Where simulated handlers write their output blobs (and read script URIs from).

A run command's ``outputBlobUri`` may name the sandbox's own storage (then the bytes go
straight into its store, SAS checked exactly as over HTTP) or another endpoint on this
machine, such as Azurite (then real HTTP Put Blob / Append Block calls). Anything off this
machine is refused without a connection attempt: the sandbox never sends traffic away.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import httpx

from core.sandbox.agent import BlobSink, BlobSinkError
from core.sandbox.blobstore import (
    BlobAddress,
    BlobOperation,
    BlobStore,
    StorageError,
    parse_blob_url,
)
from core.sandbox.identities import ManagedIdentity
from core.sandbox.sas import has_sas
from core.sandbox.storage_accounts import CONTRIBUTOR, NO_ROLE, READER

SasCheck = Callable[[BlobAddress, BlobOperation], None]
"""Allows a request to the sandbox's own storage by its SAS, or raises ``StorageError``."""

STORAGE_VERSION = "2022-11-02"
"""The first version that takes 100 MiB blocks: the handler appends a whole tick's output
in one block, and 4 MiB (older versions) is easy to exceed in 15 s. A tick over 100 MiB is
refused (413 RequestBodyTooLarge) and its bytes never reach the blob, as with the real
handler, which does not split its appends (and only logs a refusal). Given a SAS token,
that handler appends through the legacy Go storage SDK, whose default x-ms-version
(2018-03-28) caps blocks at 4 MiB (how CRP hands the SAS over is UNCONFIRMED);
``[storage] max_append_block = "4MiB"`` in a fleet file reproduces that."""
INTERNAL_SUFFIX = ".blob.sandbox.invalid"
"""Host style URLs ``https://<account>.blob.sandbox.invalid/...`` name the sandbox's own
storage without a server (``.invalid`` can never resolve)."""


def internal_blob_url(account: str, container: str, blob: str, sas: str) -> str:
    return f"https://{account}{INTERNAL_SUFFIX}/{container}/{blob}?{sas}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


IdentityRoles = Callable[[str, str], str]
"""(account, container) → the data role the machines' managed identities hold there."""


class BlobSinks:
    """Opens blob sinks for run commands; shares one HTTP client among them.

    Args:
        store: The sandbox's own storage.
        identity_roles: The machines' identities' role per container; None: they hold none.
    """

    def __init__(self, store: BlobStore, identity_roles: IdentityRoles | None = None) -> None:
        self.store = store
        self._identity_roles = identity_roles or (lambda account, container: NO_ROLE)
        self._check_sas: SasCheck = self._key_sas_only
        self.own_netlocs: set[str] = set()
        """``host:port`` values that are this sandbox's server (set when it starts)."""
        self._client: httpx.AsyncClient | None = None

    def check_sas_with(self, check: SasCheck) -> None:
        """Check the SAS of a handler's own-storage writes and script reads as the HTTP
        endpoint checks a request's (user delegation SAS included)."""
        self._check_sas = check

    def _key_sas_only(self, address: BlobAddress, operation: BlobOperation) -> None:
        self.store.authorize(address.account, address.container, address.blob, address.query,
                             operation, https=address.https)

    def is_own(self, uri: str) -> bool:
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
        return parts.netloc.lower() in self.own_netlocs or host.endswith(INTERNAL_SUFFIX)

    def open(self, uri: str, identity: ManagedIdentity | None = None) -> BlobSink:
        """A sink for an output blob, written with its SAS, else (absent or refused) as the
        machine's managed identity ``identity``, as the Linux handler does."""
        if self.is_own(uri):
            return _StoreSink(self.store, uri, self._check_sas,
                              self._as_identity(identity, CONTRIBUTOR))
        host = urlsplit(uri).hostname or ""
        if not _is_loopback(host):
            raise BlobSinkError(
                f"the sandbox writes blobs only to endpoints on this machine, not {host!r}"
            )
        return _HttpSink(self._http(), uri)

    def _as_identity(
        self, identity: ManagedIdentity | None, needs: str
    ) -> Callable[[BlobAddress], None] | None:
        """A check that ``identity`` may use a blob of the sandbox's storage (raising
        ``BlobSinkError`` with Azure's refusal); None without an identity."""
        if identity is None:
            return None

        def check(address: BlobAddress) -> None:
            refusal = identity.refusal()
            if refusal is not None:
                raise BlobSinkError(f"managed identity: {refusal}")
            role = self._identity_roles(address.account, address.container)
            if role != CONTRIBUTOR and not (needs == READER and role == READER):
                raise BlobSinkError(
                    "403 AuthorizationPermissionMismatch: the VM's managed identity holds "
                    f"{'no role' if role == NO_ROLE else role} on container "
                    f"'{address.container}', and needs {needs}")

        return check

    async def fetch(self, uri: str, identity: ManagedIdentity | None = None) -> str:
        """A ``scriptUri``'s text, from the sandbox's storage (with its SAS, else as the
        machine's identity) or a loopback endpoint."""
        if self.is_own(uri):
            try:
                address = parse_blob_url(uri)
                _authorize(self._check_sas, address, BlobOperation.READ,
                           self._as_identity(identity, READER))
                data = self.store.read(address.account, address.container, address.blob).data
            except (ValueError, StorageError) as exc:
                raise BlobSinkError(str(exc)) from None
            return data.decode("utf-8", errors="replace")
        host = urlsplit(uri).hostname or ""
        if not _is_loopback(host):
            raise BlobSinkError(
                f"the sandbox downloads scripts only from endpoints on this machine, not {host!r}"
            )
        try:
            response = await self._http().get(uri)
        except httpx.HTTPError as exc:
            raise BlobSinkError(f"GET failed: {exc}") from None
        if response.status_code != 200:
            raise BlobSinkError(f"GET answered {response.status_code}")
        return response.text

    def read_own(self, uri: str, offset: int) -> bytes:
        """Bytes of one of the sandbox's own blobs from ``offset`` (empty: nothing new yet)."""
        address = parse_blob_url(uri)
        try:
            return self.store.read(address.account, address.container, address.blob,
                                   start=offset).data
        except StorageError:
            return b""

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30.0, trust_env=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _authorize(
    check_sas: SasCheck, address: BlobAddress, operation: BlobOperation,
    as_identity: Callable[[BlobAddress], None] | None,
) -> None:
    """The SAS when there is one and it holds, else the managed identity; the SAS's refusal
    when there is no identity to fall back on."""
    if as_identity is None or has_sas(address.query):
        try:
            check_sas(address, operation)
            return
        except StorageError:
            if as_identity is None:
                raise
    as_identity(address)


class _StoreSink:
    def __init__(
        self, store: BlobStore, uri: str, check_sas: SasCheck,
        as_identity: Callable[[BlobAddress], None] | None,
    ) -> None:
        self._store = store
        self._check_sas = check_sas
        self._uri = uri
        self._as_identity = as_identity

    async def create(self) -> None:
        try:
            address = parse_blob_url(self._uri)
            _authorize(self._check_sas, address, BlobOperation.CREATE, self._as_identity)
            self._store.put_append_blob(address.account, address.container, address.blob)
        except (ValueError, StorageError) as exc:
            raise BlobSinkError(str(exc)) from None

    async def append(self, data: bytes) -> None:
        try:
            address = parse_blob_url(self._uri)
            _authorize(self._check_sas, address, BlobOperation.APPEND, self._as_identity)
            self._store.append_block(address.account, address.container, address.blob, data,
                                     version=STORAGE_VERSION)
        except (ValueError, StorageError) as exc:
            raise BlobSinkError(str(exc)) from None


class _HttpSink:
    """Put Blob and Append Block over HTTP, as the Linux handler does with a SAS URL."""

    def __init__(self, client: httpx.AsyncClient, uri: str) -> None:
        self._client = client
        self._uri = uri

    async def create(self) -> None:
        headers = {"x-ms-blob-type": "AppendBlob", "x-ms-version": STORAGE_VERSION}
        await self._put(self._uri, b"", headers, "Put Blob")

    async def append(self, data: bytes) -> None:
        parts = urlsplit(self._uri)
        query = f"comp=appendblock&{parts.query}" if parts.query else "comp=appendblock"
        url = urlunsplit(parts._replace(query=query))
        await self._put(url, data, {"x-ms-version": STORAGE_VERSION}, "Append Block")

    async def _put(self, url: str, body: bytes, headers: dict[str, str], what: str) -> None:
        try:
            response = await self._client.put(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise BlobSinkError(f"{what} failed: {exc}") from None
        if response.status_code != 201:
            code = response.headers.get("x-ms-error-code", "")
            raise BlobSinkError(f"{what} answered {response.status_code} {code}".rstrip())
