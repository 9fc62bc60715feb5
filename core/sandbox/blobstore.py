"""In-memory storage accounts, containers and their blobs, with Azure Storage's rules.

Append blobs are what run commands write output into; block blobs are what a client
uploads in one Put Blob (a script too big to send inline).

This is the state behind the sandbox's blob endpoint (``blob_routes``) and what the
simulated run-command handler writes output into. Every operation is a plain method that
either returns or raises :class:`StorageError` with the HTTP status, error code and message
the real service would answer; the HTTP layer only translates.

The store is shared between the server's event loop and whoever else holds it (the
simulated handlers, tests, a server running in another thread), so one ``threading.Lock``
guards it: every operation is short, pure CPU and never awaits while holding it, so the
lock never stalls an event loop, and it makes the store safe even when uvicorn serves it
from a thread other than the writer's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final
from urllib.parse import unquote, urlsplit

from core.sandbox.sas import SasError, verify_service_sas
from core.sandbox.storage_errors import (
    Conditions,
    StorageError,
    body_too_large,
    condition_not_met,
    etag_matches,
    invalid_blob_type,
    invalid_header,
    sealed,
)

__all__ = [
    "APPEND_BLOB", "BLOCK_BLOB", "AppendResult", "BlobAddress", "BlobOperation",
    "BlobProperties", "BlobRead", "BlobStore", "Conditions", "StorageError",
    "body_too_large", "condition_not_met", "etag_matches", "invalid_header",
    "max_append_block_size", "max_put_blob_size", "parse_blob_url", "parse_query",
]

APPEND_BLOB: Final = "AppendBlob"
BLOCK_BLOB: Final = "BlockBlob"
MAX_BLOCKS: Final = 50_000
"""Committed blocks an append blob can hold."""
SMALL_BLOCK_LIMIT: Final = 4 * 1024 * 1024
LARGE_BLOCK_LIMIT: Final = 100 * 1024 * 1024
LARGE_BLOCKS_SINCE: Final = "2022-11-02"
"""From this x-ms-version on an Append Block may carry 100 MiB instead of 4 MiB."""
HANDLER_VERSION: Final = "2021-12-02"
"""The x-ms-version direct (non-HTTP) callers write with unless they say otherwise."""
DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
PUT_BLOB_LIMITS: Final = (("2019-12-12", 5000 * 1024 * 1024), ("2016-05-31", 256 * 1024 * 1024))
"""Single-shot Put Blob sizes by x-ms-version (Learn "Put Blob"); 64 MiB before 2016-05-31."""
OLDEST_PUT_BLOB_LIMIT: Final = 64 * 1024 * 1024
NO_CONDITIONS: Final = Conditions()

_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_CONTAINER_NAME = re.compile(r"(?=.{3,63}$)[a-z0-9](?:-?[a-z0-9])*")
# .NET ticks (100 ns since 0001-01-01) of the Unix epoch: Azure's ETags are these in hex.
_EPOCH_TICKS: Final = 621_355_968_000_000_000


class BlobOperation(StrEnum):
    """What a request does to a blob; decides the SAS permission it needs."""

    READ = "read"
    """Get Blob, Get Blob Properties: ``r``."""
    CREATE = "create"
    """Put Blob: ``c`` or ``w`` for a new blob, ``w`` to overwrite one."""
    DELETE = "delete"
    """Delete Blob: ``d``."""
    APPEND = "append"
    """Append Block: ``a`` or ``w``."""
    SEAL = "seal"
    """Append Blob Seal: ``w``."""


@dataclass(frozen=True, slots=True)
class BlobProperties:
    """A snapshot of one blob's system properties."""

    size: int
    etag: str
    """Quoted, e.g. ``"0x8DC1A2B3C4D5E6F"``; changes on every write."""
    last_modified: datetime
    created: datetime
    """Changes when Put Blob re-creates the blob: how a tailer detects a rewrite."""
    committed_block_count: int
    sealed: bool
    content_type: str
    blob_type: str = APPEND_BLOB
    """``AppendBlob`` or ``BlockBlob``: ``x-ms-blob-type``."""
    content_md5: str | None = None
    """Base64 MD5 of a block blob's content, computed at Put Blob; None for append blobs."""


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What Append Block reports."""

    offset: int
    """Where the block starts: ``x-ms-blob-append-offset``."""
    properties: BlobProperties


@dataclass(frozen=True, slots=True)
class BlobRead:
    """Bytes read from a blob and the properties they were read at."""

    data: bytes
    properties: BlobProperties
    first: int
    """Offset of the first byte returned."""
    last: int
    """Offset of the last byte returned (inclusive); ``first - 1`` when nothing was."""
    ranged: bool
    """Whether a range was asked for (206) or the whole blob (200)."""


@dataclass(frozen=True, slots=True)
class BlobAddress:
    """A blob URL taken apart: ``<scheme>://<host>/<account>/<container>/<blob>?<SAS>``."""

    account: str
    container: str
    blob: str
    query: dict[str, str]
    https: bool


@dataclass(slots=True)
class _Blob:
    etag: str
    created: datetime
    last_modified: datetime
    content_type: str
    content: bytearray = field(default_factory=bytearray)
    committed_blocks: int = 0
    sealed: bool = False
    blob_type: str = APPEND_BLOB
    content_md5: str | None = None

    def properties(self) -> BlobProperties:
        return BlobProperties(
            size=len(self.content),
            etag=self.etag,
            last_modified=self.last_modified,
            created=self.created,
            committed_block_count=self.committed_blocks,
            sealed=self.sealed,
            content_type=self.content_type,
            blob_type=self.blob_type,
            content_md5=self.content_md5,
        )


@dataclass(slots=True)
class _Account:
    key: str
    containers: dict[str, dict[str, _Blob]] = field(default_factory=dict)


def sas_permissions(operation: BlobOperation, *, exists: bool) -> str:
    """SAS permission letters of which one allows ``operation``."""
    return {
        BlobOperation.READ: "r",
        BlobOperation.CREATE: "w" if exists else "cw",
        BlobOperation.APPEND: "aw",
        BlobOperation.SEAL: "w",
        BlobOperation.DELETE: "d",
    }[operation]


def max_append_block_size(version: str) -> int:
    """The largest Append Block body the service takes at this x-ms-version."""
    return LARGE_BLOCK_LIMIT if version >= LARGE_BLOCKS_SINCE else SMALL_BLOCK_LIMIT


def max_put_blob_size(version: str) -> int:
    """The largest single Put Blob body of a block blob at this x-ms-version."""
    for since, limit in PUT_BLOB_LIMITS:
        if version >= since:
            return limit
    return OLDEST_PUT_BLOB_LIMIT


def parse_query(query_string: str) -> dict[str, str]:
    """Split a raw query string into decoded parameters; the first of a repeated name wins.

    ``+`` stays a plus sign: SAS signatures are base64, and a hand-pasted URL with a raw
    ``+`` in ``sig`` should still verify.
    """
    parameters: dict[str, str] = {}
    for pair in query_string.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        parameters.setdefault(unquote(name), unquote(value))
    return parameters


def parse_blob_url(url: str) -> BlobAddress:
    """Take a blob SAS URL apart.

    Path style (``http://127.0.0.1:10000/<account>/<container>/<blob>``, as the sandbox and
    Azurite serve) and host style (``https://<account>.blob.core.windows.net/<container>/
    <blob>``) are both understood.

    Raises:
        ValueError: The URL does not name an account, a container and a blob.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) blob URL: {url!r}")
    segments = unquote(parts.path).lstrip("/").split("/")
    host = parts.hostname
    if ".blob." in host:
        segments.insert(0, host.split(".", 1)[0])
    if len(segments) < 3 or not all(segments[:3]):
        raise ValueError(f"the URL names no account, container and blob: {url!r}")
    account, container, blob = segments[0], segments[1], "/".join(segments[2:])
    return BlobAddress(account, container, blob, parse_query(parts.query), parts.scheme == "https")


class BlobStore:
    """Storage accounts, their containers, and the append blobs in them.

    Args:
        clock: The service's notion of now (aware, UTC): timestamps and SAS validity.
        max_block: A lower Append Block limit than the service's (see
            :meth:`block_limit`); None keeps the service's. Lets tests and fleet files
            meet the limit with a few megabytes of output instead of 100 MiB.

    Raises:
        ValueError: ``max_block`` is below 1.
    """

    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, max_block: int | None = None
    ) -> None:
        if max_block is not None and max_block < 1:
            raise ValueError(f"max_block {max_block}: at least 1 byte")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._max_block = max_block
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.Lock()
        self._last_tick = 0

    def now(self) -> datetime:
        """The service's current time (the injected clock)."""
        return self._clock()

    def block_limit(self, version: str) -> int:
        """The largest Append Block body taken at this x-ms-version (413 above it)."""
        limit = max_append_block_size(version)
        return limit if self._max_block is None else min(limit, self._max_block)

    # ------------------------------------------------------------------ accounts, containers

    def add_account(self, name: str, key: str) -> None:
        """Add (or replace the key of) a storage account.

        Raises:
            ValueError: The name is not 3-24 lowercase letters and digits, or the key is
                not base64.
        """
        if not _ACCOUNT_NAME.fullmatch(name):
            raise ValueError(f"account name {name!r}: 3-24 lowercase letters and digits")
        try:
            if not base64.b64decode(key, validate=True):
                raise ValueError("empty")
        except (binascii.Error, ValueError):
            raise ValueError(f"the key of account {name!r} is not base64") from None
        with self._lock:
            existing = self._accounts.get(name)
            if existing is None:
                self._accounts[name] = _Account(key)
            else:
                existing.key = key

    def account_key(self, account: str) -> str:
        """The account's key.

        Raises:
            StorageError: 404 ``ResourceNotFound`` for an unknown account.
        """
        with self._lock:
            return self._account(account).key

    def has_account(self, account: str) -> bool:
        with self._lock:
            return account in self._accounts

    def create_container(self, account: str, container: str, *, exist_ok: bool = True) -> None:
        """Create a container.

        Raises:
            ValueError: Not a valid container name (3-63 lowercase letters, digits and
                single hyphens, starting and ending with a letter or digit).
            StorageError: 404 ``ResourceNotFound`` for an unknown account; 409
                ``ContainerAlreadyExists`` when it exists and ``exist_ok`` is false.
        """
        if not _CONTAINER_NAME.fullmatch(container):
            raise ValueError(f"container name {container!r} is not valid")
        with self._lock:
            containers = self._account(account).containers
            if container in containers:
                if exist_ok:
                    return
                raise StorageError(
                    409, "ContainerAlreadyExists", "The specified container already exists."
                )
            containers[container] = {}

    def delete_container(self, account: str, container: str) -> bool:
        """Remove a container and its blobs; whether it was there."""
        with self._lock:
            return self._account(account).containers.pop(container, None) is not None

    def containers(self, account: str) -> list[str]:
        with self._lock:
            return sorted(self._account(account).containers)

    def blob_names(self, account: str, container: str) -> list[str]:
        with self._lock:
            return sorted(self._container(account, container))

    # ------------------------------------------------------------------------- authorisation

    def authorize(
        self,
        account: str,
        container: str,
        blob: str,
        query: Mapping[str, str],
        operation: BlobOperation | str,
        *,
        https: bool = True,
        client_ip: str | None = None,
    ) -> None:
        """Check the request's SAS exactly as the HTTP endpoint does.

        Args:
            account: Account addressed.
            container: Container addressed.
            blob: Blob addressed.
            query: The URL's decoded query parameters (the SAS).
            operation: What the request does (see :class:`BlobOperation`).
            https: Whether the request came over HTTPS.
            client_ip: The caller's address for ``sip``; None skips that check.

        Raises:
            StorageError: 404 ``ResourceNotFound`` for an unknown account, else the SAS
                refusal (403, see ``core.sandbox.sas``).
        """
        operation = BlobOperation(operation)
        with self._lock:
            key = self._account(account).key
            exists = blob in self._accounts[account].containers.get(container, {})
        any_of = sas_permissions(operation, exists=exists)
        try:
            verify_service_sas(
                query, account=account, account_key=key, container=container, blob=blob,
                any_of=any_of, now=self._clock(), https=https, client_ip=client_ip,
            )
        except SasError as exc:
            raise StorageError.from_sas(exc) from None

    # ------------------------------------------------------------------------------ blobs

    def put_append_blob(
        self,
        account: str,
        container: str,
        blob: str,
        *,
        if_none_match: str | None = None,
        if_match: str | None = None,
        content_type: str | None = None,
    ) -> BlobProperties:
        """Put Blob with ``x-ms-blob-type: AppendBlob``: create it empty, or overwrite it.

        Args:
            account: Account.
            container: Container.
            blob: Blob name.
            if_none_match: ``*`` refuses to overwrite; an ETag refuses when it matches.
            if_match: ``*`` or an ETag the existing blob must have.
            content_type: ``x-ms-blob-content-type``; default ``application/octet-stream``.

        Raises:
            StorageError: 404 ``ContainerNotFound``; 409 ``BlobAlreadyExists`` under
                ``If-None-Match``; 412 ``ConditionNotMet`` under ``If-Match``; 409
                ``BlobIsSealed`` over a sealed blob.
        """
        with self._lock:
            blobs = self._container(account, container)
            existing = blobs.get(blob)
            _check_write(existing, Conditions(if_match, if_none_match))
            now = self._clock()
            created = _Blob(
                etag=self._next_etag(now), created=now, last_modified=now,
                content_type=content_type or DEFAULT_CONTENT_TYPE,
            )
            blobs[blob] = created
            return created.properties()

    def append_block(
        self,
        account: str,
        container: str,
        blob: str,
        data: bytes,
        *,
        version: str = HANDLER_VERSION,
        append_position: int | None = None,
        max_size: int | None = None,
        if_match: str | None = None,
        if_none_match: str | None = None,
    ) -> AppendResult:
        """Append Block.

        Args:
            account: Account.
            container: Container.
            blob: Blob name.
            data: The block; 1 byte up to the version's limit.
            version: x-ms-version; decides the block size limit (4 MiB or 100 MiB, or
                the store's lower ``max_block``).
            append_position: ``x-ms-blob-condition-appendpos``: the size the blob must have.
            max_size: ``x-ms-blob-condition-maxsize``: the size it must not pass.
            if_match: ``If-Match``.
            if_none_match: ``If-None-Match``.

        Returns:
            The offset the block was written at and the blob's new properties.

        Raises:
            StorageError: 404 ``ContainerNotFound``/``BlobNotFound``; 400
                ``InvalidHeaderValue`` for an empty block; 413 ``RequestBodyTooLarge``;
                409 ``BlobIsSealed``/``BlockCountExceedsLimit``; 412
                ``AppendPositionConditionNotMet``/``MaxBlobSizeConditionNotMet``/
                ``ConditionNotMet``.
        """
        limit = self.block_limit(version)
        if not data:
            raise invalid_header("Content-Length", "0")
        if len(data) > limit:
            raise body_too_large(limit)
        with self._lock:
            target = self._blob(account, container, blob)
            if target.blob_type != APPEND_BLOB:
                raise invalid_blob_type()
            _check_write(target, Conditions(if_match, if_none_match))
            if target.sealed:
                raise sealed()
            if target.committed_blocks >= MAX_BLOCKS:
                raise StorageError(
                    409, "BlockCountExceedsLimit",
                    "The committed block count cannot exceed the maximum limit of 50,000 "
                    "blocks.",
                )
            offset = len(target.content)
            if append_position is not None and append_position != offset:
                raise StorageError(
                    412, "AppendPositionConditionNotMet",
                    "The append position condition specified was not met.",
                )
            if max_size is not None and offset + len(data) > max_size:
                raise StorageError(
                    412, "MaxBlobSizeConditionNotMet",
                    "The max blob size condition specified was not met.",
                )
            target.content += data
            target.committed_blocks += 1
            self._touch(target)
            return AppendResult(offset, target.properties())

    def seal(
        self, account: str, container: str, blob: str, *, if_match: str | None = None
    ) -> BlobProperties:
        """Append Blob Seal: no more appends. Sealing a sealed blob succeeds again.

        Raises:
            StorageError: 404 ``ContainerNotFound``/``BlobNotFound``; 412 ``ConditionNotMet``.
        """
        with self._lock:
            target = self._blob(account, container, blob)
            if target.blob_type != APPEND_BLOB:
                raise invalid_blob_type()
            Conditions(if_match).check_write(target.etag, target.last_modified)
            if not target.sealed:
                target.sealed = True
                self._touch(target)
            return target.properties()

    def put_block_blob(
        self,
        account: str,
        container: str,
        blob: str,
        data: bytes,
        *,
        conditions: Conditions = NO_CONDITIONS,
        content_type: str | None = None,
    ) -> BlobProperties:
        """Put Blob with ``x-ms-blob-type: BlockBlob``: the whole content in one request.

        Creates the blob or overwrites whatever blob (of either type) has the name.

        Raises:
            StorageError: 404 ``ContainerNotFound``; 409 ``BlobAlreadyExists`` under
                ``If-None-Match: *``; 412 ``ConditionNotMet``; 409 ``BlobIsSealed`` over a
                sealed append blob.
        """
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode("ascii")
        with self._lock:
            blobs = self._container(account, container)
            _check_write(blobs.get(blob), conditions)
            now = self._clock()
            blobs[blob] = _Blob(
                etag=self._next_etag(now), created=now, last_modified=now,
                content_type=content_type or DEFAULT_CONTENT_TYPE,
                content=bytearray(data), blob_type=BLOCK_BLOB, content_md5=md5,
            )
            return blobs[blob].properties()

    def delete_blob(
        self, account: str, container: str, blob: str, *, conditions: Conditions = NO_CONDITIONS
    ) -> None:
        """Delete Blob (no soft delete: the blob is gone at once; a sealed one too).

        Raises:
            StorageError: 404 ``ContainerNotFound``/``BlobNotFound``; 412 ``ConditionNotMet``.
        """
        with self._lock:
            target = self._blob(account, container, blob)
            conditions.check_write(target.etag, target.last_modified)
            del self._container(account, container)[blob]

    def properties(self, account: str, container: str, blob: str) -> BlobProperties:
        """Get Blob Properties.

        Raises:
            StorageError: 404 ``ContainerNotFound`` or ``BlobNotFound``.
        """
        with self._lock:
            return self._blob(account, container, blob).properties()

    def read(
        self,
        account: str,
        container: str,
        blob: str,
        start: int | None = None,
        end: int | None = None,
    ) -> BlobRead:
        """Get Blob, whole (``start`` None) or the inclusive range ``start``..``end``.

        An open range (``end`` None) runs to the end; an ``end`` past the end is cut there.

        Raises:
            StorageError: 404 ``ContainerNotFound``/``BlobNotFound``; 416 ``InvalidRange``
                (with ``Content-Range: bytes */<size>``) when ``start`` is at or past the
                end, which includes any range on an empty blob, or after ``end``.
        """
        with self._lock:
            target = self._blob(account, container, blob)
            size = len(target.content)
            if start is None:
                return BlobRead(bytes(target.content), target.properties(), 0, size - 1, False)
            if start >= size or (end is not None and end < start):
                raise StorageError(
                    416, "InvalidRange",
                    "The range specified is invalid for the current size of the resource.",
                    headers={"Content-Range": f"bytes */{size}"},
                )
            last = size - 1 if end is None else min(end, size - 1)
            data = bytes(target.content[start:last + 1])
            return BlobRead(data, target.properties(), start, last, True)

    # ------------------------------------------------------------- SAS URLs, without HTTP

    def put_append_blob_via_sas(self, url: str) -> BlobProperties:
        """Create (or re-create) the append blob a SAS URL names, authorised by its SAS.

        This is what the simulated run-command handler calls instead of an HTTP PUT; the
        SAS is checked exactly as the HTTP endpoint checks it (``sip`` aside: there is no
        client address).

        Raises:
            ValueError: The URL names no account, container and blob.
            StorageError: As :meth:`authorize` and :meth:`put_append_blob`.
        """
        address = parse_blob_url(url)
        self.authorize(
            address.account, address.container, address.blob, address.query,
            BlobOperation.CREATE, https=address.https,
        )
        return self.put_append_blob(address.account, address.container, address.blob)

    def append_block_via_sas(
        self, url: str, data: bytes, *, version: str = HANDLER_VERSION
    ) -> AppendResult:
        """Append a block to the blob a SAS URL names, authorised by its SAS.

        Raises:
            ValueError: The URL names no account, container and blob.
            StorageError: As :meth:`authorize` and :meth:`append_block`.
        """
        address = parse_blob_url(url)
        self.authorize(
            address.account, address.container, address.blob, address.query,
            BlobOperation.APPEND, https=address.https,
        )
        return self.append_block(
            address.account, address.container, address.blob, data, version=version
        )

    # ------------------------------------------------------------------------- internals

    def _account(self, account: str) -> _Account:
        found = self._accounts.get(account)
        if found is None:
            raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")
        return found

    def _container(self, account: str, container: str) -> dict[str, _Blob]:
        found = self._account(account).containers.get(container)
        if found is None:
            raise StorageError(404, "ContainerNotFound", "The specified container does not exist.")
        return found

    def _blob(self, account: str, container: str, blob: str) -> _Blob:
        found = self._container(account, container).get(blob)
        if found is None:
            raise StorageError(404, "BlobNotFound", "The specified blob does not exist.")
        return found

    def _next_etag(self, now: datetime) -> str:
        # Ticks of the write time, but strictly increasing so that two writes within one
        # clock step (or under a frozen test clock) still get different ETags.
        ticks = int(now.timestamp() * 10_000_000) + _EPOCH_TICKS
        self._last_tick = max(ticks, self._last_tick + 1)
        return f'"0x{self._last_tick:X}"'

    def _touch(self, target: _Blob) -> None:
        now = self._clock()
        target.last_modified = now
        target.etag = self._next_etag(now)


def _check_write(existing: _Blob | None, conditions: Conditions) -> None:
    """Conditions of a (re-)creating write, then the sealed rule."""
    if existing is None:
        conditions.check_write(None, None)
        return
    conditions.check_write(existing.etag, existing.last_modified)
    if existing.sealed:
        # Azurite's wording says a sealed blob changes only after a delete; the real
        # service's behaviour for Put Blob over it is UNCONFIRMED.
        raise sealed()
