"""Append blobs over REST: create, append and ranged reads with a SAS URL or a bearer token.

Only httpx is used (no Azure SDK). Facts followed here are in
``shared/reference/azure-run-command.md`` section 8:

- every request sends ``x-ms-version`` (bearer tokens need 2017-11-09 or newer);
- a ranged read at or past the end is "nothing new", whichever way the server says it: 206
  with no bytes (Azurite), 416 ``InvalidRange`` with ``Content-Range: bytes */<size>`` (Azure),
  or 304 when an ``If-None-Match`` ETag still matches; 404 ``BlobNotFound`` means "not yet";
- Append Block takes at most 4 MiB at the default version, so longer data goes in several
  blocks, each pinned with ``x-ms-blob-condition-appendpos`` so that a retry can never write
  the same bytes twice.

Transient failures (connection errors and resets, timeouts, 500/502/503/504) are retried
with jittered exponential backoff. Nothing this module raises or formats shows a SAS
signature: :func:`redact_sas` replaces it first.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

import httpx

from core.azure.blob_errors import (
    BlobError,
    error_code,
    error_from,
    invalid_response,
    transport_error,
)
from core.azure.blob_urls import blob_key, blob_url, redact_sas, with_query
from core.azure.http import parsed_url, send

__all__ = [
    "AppendBlobClient",
    "BlobError",
    "BlobRead",
    "BlobRetry",
    "blob_url",
    "redact_sas",
]

DEFAULT_VERSION: Final = "2021-12-02"
"""The ``x-ms-version`` sent unless the caller chooses another (reference section 8.6)."""
BEARER_SINCE: Final = "2017-11-09"
"""The first storage version that accepts Microsoft Entra bearer tokens."""
MAX_APPEND_BLOCK: Final = 4 * 1024 * 1024
"""Append Block's limit below x-ms-version 2022-11-02, and what :meth:`append` sends at most."""
TRANSIENT_STATUSES: Final = frozenset({500, 502, 503, 504})

_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(-?\d+)/(\d+)")
_UNSATISFIED_RANGE = re.compile(r"bytes \*/(\d+)")
_RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
Bearer = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class BlobRead:
    """One answer about a blob: bytes read (if any) and what the headers told.

    Attributes:
        data: Bytes from the requested offset; empty when there was nothing new.
        size: The blob's total size, when the answer told it (not on 304 or 404).
        etag: The blob's ETag, when the answer carried one.
        created: ``x-ms-creation-time``, when the answer carried one.
        exists: False when the blob does not exist (yet).
        blocks: ``x-ms-blob-committed-block-count``, when the answer carried one.
    """

    data: bytes = b""
    size: int | None = None
    etag: str | None = None
    created: datetime | None = None
    exists: bool = True
    blocks: int | None = None


@dataclass(frozen=True)
class BlobRetry:
    """How often and how patiently transient failures are retried.

    Attributes:
        attempts: Tries per operation in all, the first included.
        base_delay: Seconds before the first retry; doubles for each further retry.
        max_delay: Cap on one wait, ``Retry-After`` included.
    """

    attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 8.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based): half fixed, half jitter."""
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry)
        wait = ceiling / 2 + random.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


class AppendBlobClient:
    """Create, append to and read append blobs; one instance serves any number of blobs.

    Args:
        http: The client to send with; the caller owns it (and its timeouts).
        bearer: Returns a Microsoft Entra token for storage; sent as ``Authorization:
            Bearer`` on every request. None when the URLs carry a SAS.
        version: The ``x-ms-version`` to send.
        retry: How transient failures are retried.

    Raises:
        ValueError: ``version`` is not a date, or is older than 2017-11-09 with a bearer.
    """

    def __init__(self, http: httpx.AsyncClient, bearer: Bearer | None = None, *,
                 version: str = DEFAULT_VERSION, retry: BlobRetry | None = None) -> None:
        if not _VERSION.fullmatch(version):
            raise ValueError(f"x-ms-version {version!r}: expected a date like {DEFAULT_VERSION}")
        if bearer is not None and version < BEARER_SINCE:
            raise ValueError(
                f"x-ms-version {version!r}: bearer tokens need {BEARER_SINCE} or newer"
            )
        self._http = http
        self._bearer = bearer
        self.version = version
        self.retry = retry or BlobRetry()
        self._ends: dict[str, int] = {}
        """Where the next append to each blob goes, as far as this client knows."""

    async def create(self, url: str) -> None:
        """Put Blob: an empty append blob, replacing any blob of that name.

        Raises:
            BlobError: The service refused (for instance 403 without ``c``/``w`` permission).
        """
        response = await self._retrying(
            "PUT", url, {"x-ms-blob-type": "AppendBlob", "Content-Length": "0"}
        )
        if response.status_code != 201:
            raise error_from(response)
        self._ends[blob_key(url)] = 0

    async def append(self, url: str, data: bytes) -> int:
        """Append Block, in blocks of at most 4 MiB; each block is written exactly once.

        Each block is pinned to the position this client expects the blob to end at
        (learned with a HEAD on first use). When a retry finds that position taken, the
        bytes there are read back: if they are this block, the earlier attempt landed and
        is not repeated; otherwise another writer appended, and the block goes at the new
        end.

        Returns:
            The offset at which ``data`` starts; for empty ``data``, the blob's size.

        Raises:
            BlobError: The blob is missing (404 ``BlobNotFound``), is not an append blob,
                the service refused, or failures outlasted the retries (the block whose
                answer never came may then be in the blob or not; a later append finds out
                and goes after it either way).
        """
        if not data:
            return await self._end_of(url)
        start: int | None = None
        for first in range(0, len(data), MAX_APPEND_BLOCK):
            offset = await self._append_block(url, data[first:first + MAX_APPEND_BLOCK])
            start = offset if start is None else start
        assert start is not None
        return start

    async def read(self, url: str, offset: int, *, length: int | None = None,
                   if_none_match: str | None = None) -> BlobRead:
        """Get Blob from ``offset`` to the end, or ``length`` bytes at most.

        Args:
            url: The blob's URL.
            offset: The first byte wanted.
            length: Read at most this many bytes (``x-ms-range: bytes=<offset>-<last>``).
            if_none_match: An ETag; while the blob still has it the answer is 304, empty.

        Returns:
            The bytes and properties; no bytes (and ``exists`` still True) when there is
            nothing at ``offset``; ``exists`` False when the blob is not there (yet).

        Raises:
            ValueError: ``offset`` is negative or ``length`` is not positive.
            BlobError: Any other refusal (a missing container included), or an answer
                that does not match the request.
        """
        if offset < 0 or (length is not None and length < 1):
            raise ValueError(f"offset {offset}, length {length}: expected offset >= 0 and "
                             "length >= 1 (or no length)")
        last = "" if length is None else str(offset + length - 1)
        headers = {"x-ms-range": f"bytes={offset}-{last}"}
        if if_none_match is not None:
            headers["If-None-Match"] = if_none_match
        response = await self._retrying("GET", url, headers)
        status = response.status_code
        if status == 206:
            return _ranged(response, offset, length)
        if status == 200:
            # A server that ignores ranges sends it all; keep only what was asked for.
            data = response.content[offset:None if length is None else offset + length]
            return _properties(response, data, len(response.content))
        if status == 304:
            return BlobRead(etag=response.headers.get("ETag"))
        if status == 416:
            match = _UNSATISFIED_RANGE.fullmatch(response.headers.get("Content-Range", ""))
            return BlobRead(size=int(match[1]) if match else None)
        if status == 404 and error_code(response) == "BlobNotFound":
            return BlobRead(exists=False)
        raise error_from(response)

    async def properties(self, url: str) -> BlobRead:
        """Get Blob Properties (HEAD): size, ETag, creation time; ``exists`` False on 404.

        Raises:
            BlobError: Any refusal other than 404 ``BlobNotFound``.
        """
        response = await self._retrying("HEAD", url, {})
        if response.status_code == 200:
            size = _int_header(response, "Content-Length")
            return _properties(response, b"", size)
        if response.status_code == 404 and error_code(response) == "BlobNotFound":
            return BlobRead(exists=False)
        raise error_from(response)

    async def _end_of(self, url: str) -> int:
        known = self._ends.get(blob_key(url))
        if known is not None:
            return known
        found = await self.properties(url)
        if not found.exists or found.size is None:
            raise BlobError(404, "BlobNotFound", "The specified blob does not exist.",
                            method="HEAD", url=url)
        return found.size

    async def _append_block(self, url: str, block: bytes) -> int:
        key = blob_key(url)
        position = await self._end_of(url)
        may_have_landed = False
        target = with_query(url, "comp=appendblock")
        for attempt in range(self.retry.attempts):
            headers = {"x-ms-blob-condition-appendpos": str(position)}
            try:
                response = await self._send("PUT", target, headers, block)
            except _RETRYABLE_ERRORS as exc:
                may_have_landed = True
                if attempt + 1 == self.retry.attempts:
                    raise transport_error(exc, "PUT", target) from None
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if response.status_code == 201:
                offset = _int_header(response, "x-ms-blob-append-offset")
                self._ends[key] = offset + len(block)
                return offset
            if response.status_code in TRANSIENT_STATUSES:
                may_have_landed = True
                if attempt + 1 < self.retry.attempts:
                    await asyncio.sleep(self.retry.delay(attempt, _retry_after(response)))
                    continue
            elif error_code(response) == "AppendPositionConditionNotMet":
                if may_have_landed and await self._holds(url, position, block):
                    self._ends[key] = position + len(block)
                    return position
                # Not ours: another writer appended. Go to the end it made.
                self._ends.pop(key, None)
                position = await self._end_of(url)
                may_have_landed = False
                if attempt + 1 < self.retry.attempts:
                    continue
            raise error_from(response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _holds(self, url: str, position: int, block: bytes) -> bool:
        found = await self.read(url, position, length=len(block))
        return found.data == block

    async def _retrying(self, method: str, url: str, headers: dict[str, str]) -> httpx.Response:
        """One idempotent request, retried while failures look transient."""
        for attempt in range(self.retry.attempts):
            last = attempt + 1 == self.retry.attempts
            try:
                response = await self._send(method, url, headers)
            except _RETRYABLE_ERRORS as exc:
                if last:
                    raise transport_error(exc, method, url) from None
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            if response.status_code not in TRANSIENT_STATUSES or last:
                return response
            await asyncio.sleep(self.retry.delay(attempt, _retry_after(response)))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(self, method: str, url: str, headers: dict[str, str],
                    content: bytes | None = None) -> httpx.Response:
        sent = {"x-ms-version": self.version, **headers}
        if self._bearer is not None:
            sent["Authorization"] = f"Bearer {await self._bearer()}"
        try:
            return await send(self._http, method, parsed_url(url), sent, content=content)
        except _RETRYABLE_ERRORS:
            raise
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise transport_error(exc, method, url) from None


def _int_header(response: httpx.Response, header: str) -> int:
    value = response.headers.get(header, "")
    if not value.strip().isdigit():
        raise invalid_response(response, header, "a whole number of bytes")
    return int(value)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _properties(response: httpx.Response, data: bytes, size: int | None) -> BlobRead:
    headers = response.headers
    created: datetime | None = None
    if "x-ms-creation-time" in headers:
        try:
            created = parsedate_to_datetime(headers["x-ms-creation-time"])
        except (TypeError, ValueError):
            raise invalid_response(response, "x-ms-creation-time", "an HTTP date") from None
    blocks = None
    if "x-ms-blob-committed-block-count" in headers:
        blocks = _int_header(response, "x-ms-blob-committed-block-count")
    return BlobRead(data=data, size=size, etag=headers.get("ETag"), created=created,
                    blocks=blocks)


def _ranged(response: httpx.Response, offset: int, length: int | None) -> BlobRead:
    """A 206: checks that the bytes are the ones asked for (Azurite writes an empty range as
    ``bytes 5-4/5``, or ``bytes 0--1/0`` on an empty blob)."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None or int(match[1]) != offset:
        raise invalid_response(response, "Content-Range", f"bytes {offset}-<last>/<size>")
    first, last, size = int(match[1]), int(match[2]), int(match[3])
    data = response.content
    if len(data) != max(0, last - first + 1) or (length is not None and len(data) > length):
        raise invalid_response(response, "Content-Range", f"a range of {len(data)} bytes")
    return _properties(response, data, size)
