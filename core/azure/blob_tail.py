"""Follow an append blob that someone else writes: every byte once, in order, per blob.

The run command's agent re-creates its output blob at the start of each run and appends to
it every few seconds. :class:`BlobTailer` turns that into a stream of :class:`TailChunk`:

- a blob that is not there yet is "nothing yet", not an error;
- "nothing new" has three spellings (206 with no bytes, 304, 416) and all mean the same;
- a blob that was replaced since the last poll restarts the stream at offset 0 with
  ``reset`` set, so two runs' output are never stitched together.

Replacement shows in any of: the blob vanished (404) after having been seen, its size is
below the cursor, ``x-ms-creation-time`` changed, its committed block count went down, or the
last bytes already delivered read back differently. The last check exists because creation
times have one-second resolution: a run re-created within the second it started carries the
same time, and only its content gives it away. Each poll therefore re-reads up to
``overlap`` bytes before the cursor; that also means Azure answers 206 rather than 416 when
nothing is new, which brings the headers the other checks read.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from core.azure.blob import MAX_APPEND_BLOCK, AppendBlobClient, BlobRead

DEFAULT_OVERLAP: Final = 64
"""Bytes before the cursor each poll re-reads to prove the blob is still the same one."""


@dataclass(frozen=True)
class TailChunk:
    """What one poll found.

    Attributes:
        offset: Where ``data`` starts in the blob.
        data: New bytes; empty when there was nothing new.
        reset: The blob was replaced: drop what came before, this chunk starts at 0.
        more: The poll stopped at its size limit; poll again for the rest.
        exists: False while the blob does not exist.
    """

    offset: int
    data: bytes
    reset: bool = False
    more: bool = False
    exists: bool = True


class BlobTailer:
    """Polls one append blob and hands out what was appended since the last poll.

    Args:
        client: Reads the blob.
        url: The blob's URL (with a SAS holding ``r``, or for a bearer-token client).
        chunk_size: The most new bytes one poll returns; keeps memory bounded on big blobs.
        overlap: Bytes before the cursor re-read on each poll (see the module docstring).

    Raises:
        ValueError: ``chunk_size`` is not positive or ``overlap`` is negative.
    """

    def __init__(self, client: AppendBlobClient, url: str, *,
                 chunk_size: int = MAX_APPEND_BLOCK, overlap: int = DEFAULT_OVERLAP) -> None:
        if chunk_size < 1 or overlap < 0:
            raise ValueError(f"chunk_size {chunk_size}, overlap {overlap}: expected "
                             "chunk_size >= 1 and overlap >= 0")
        self._client = client
        self._url = url
        self._chunk_size = chunk_size
        self._overlap = overlap
        self._lock = asyncio.Lock()
        self._offset = 0
        self._tail = b""
        """The last ``overlap`` bytes delivered."""
        self._size: int | None = None
        self._etag: str | None = None
        """The ETag of the last read that reached the end, for a 304 when nothing changed."""
        self._created: datetime | None = None
        self._blocks: int | None = None
        self._seen = False
        self._gone = False
        """The blob was seen, then answered 404: whatever appears next is another blob."""

    @property
    def offset(self) -> int:
        """Bytes of the current blob delivered so far: where the next chunk starts."""
        return self._offset

    async def poll(self) -> TailChunk:
        """Read what is new; concurrent calls take turns.

        Raises:
            BlobError: The service refused (for instance a SAS without read permission or a
                missing container), or failures outlasted the client's retries.
        """
        async with self._lock:
            start = self._offset - len(self._tail)
            caught_up = self._size is not None and self._offset >= self._size
            length = len(self._tail) + self._chunk_size
            etag = self._etag if caught_up else None
            found = await self._client.read(self._url, start, length=length, if_none_match=etag)
            if self._replaced_by(found):
                # Reads can briefly see a stale size (reference 8.3): ask once more first.
                found = await self._client.read(self._url, start, length=length)
            if not self._replaced_by(found):
                return self._take(found, reset=False)
            # A reset only if some of the old blob went out; otherwise (offset 0, so the
            # read started at 0) the new blob simply takes over.
            delivered = self._offset > 0
            self._forget()
            if delivered:
                found = await self._client.read(self._url, 0, length=self._chunk_size)
            return self._take(found, reset=delivered)

    def _take(self, found: BlobRead, *, reset: bool) -> TailChunk:
        """Deliver what ``found`` holds past the tail bytes, and remember its lineage."""
        if not found.exists:
            self._gone = self._seen
            return TailChunk(self._offset, b"", reset=reset, exists=False)
        self._seen = True
        if found.created is not None:
            self._created = found.created
        if found.blocks is not None:
            self._blocks = found.blocks
        if found.size is not None:
            self._size = found.size
        data = found.data[len(self._tail):]
        if found.etag is not None:
            self._etag = found.etag
        offset = self._offset
        self._offset += len(data)
        if self._overlap:
            self._tail = (self._tail + data)[-self._overlap:]
        more = self._size is not None and self._offset < self._size
        return TailChunk(offset, data, reset=reset, more=more)

    def _replaced_by(self, found: BlobRead) -> bool:
        if not found.exists:
            return False
        if self._gone:
            return True
        if found.size is not None and found.size < self._offset:
            return True
        created, blocks = found.created, found.blocks
        if created is not None and self._created is not None and created != self._created:
            return True
        if blocks is not None and self._blocks is not None and blocks < self._blocks:
            return True
        # Bytes already delivered never change in an append blob; changed ones mean another.
        return bool(found.data) and not found.data.startswith(self._tail)

    def _forget(self) -> None:
        """Start over: nothing delivered, no lineage known."""
        self._offset = 0
        self._tail = b""
        self._size = None
        self._etag = None
        self._created = None
        self._blocks = None
        self._seen = False
        self._gone = False
