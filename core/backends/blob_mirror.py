"""A copy of a run's output in append blobs, written by fleetrun itself (the SSH path).

On Azure the agent writes each stream to its append blob; an SSH host has no agent, so
fleetrun does the same from the bytes it receives: the blobs are created (replaced) when the
run starts and appended to every ``interval`` seconds and once at the end, as the handler
does. Storage trouble never fails a run: it is logged, and the local copy is complete anyway.
The bytes go through the same mask as the local copy (:mod:`core.redaction`) before they
leave this machine: a protected value the script printed is ``***`` in the blob too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.azure.blob import AppendBlobClient, BlobError
from core.azure.run_commands import OutputTargets
from core.model import Stream
from core.redaction import SecretMask, StreamRedactor

log = logging.getLogger(__name__)


class BlobMirror:
    """Appends one run's streams to its output blobs.

    Args:
        client: The blob client.
        targets: The output and error blob URLs.
        name: The machine's name, for log lines.
        interval: Seconds between appends while the run goes.
        mask: The run's protected values, masked out of what is appended.
    """

    def __init__(self, client: AppendBlobClient, targets: OutputTargets, name: str,
                 interval: float = 2.0, mask: SecretMask | None = None) -> None:
        self._client = client
        self._urls = {Stream.STDOUT: targets.output_uri, Stream.STDERR: targets.error_uri}
        self._name = name
        self._interval = interval
        self._pending: dict[Stream, bytearray] = {s: bytearray() for s in Stream}
        self._redactors = {s: StreamRedactor(mask or SecretMask(())) for s in Stream}
        self._broken = False
        self._flusher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Create (or replace) both blobs, then append periodically."""
        try:
            for url in self._urls.values():
                await self._client.create(url)
        except BlobError as error:
            self._fail(error)
            return
        self._flusher = asyncio.create_task(self._every_interval())

    def add(self, stream: Stream, offset: int, data: bytes) -> None:
        """``data`` arrived at ``offset`` of ``stream``; a range seen before is skipped."""
        if not self._broken:
            self._pending[stream] += self._redactors[stream].feed(offset, data)

    async def close(self) -> None:
        """The run ended: append what is left."""
        for stream, redactor in self._redactors.items():
            if not self._broken:
                self._pending[stream] += redactor.flush()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._flush()

    async def _every_interval(self) -> None:
        while not self._broken:
            await asyncio.sleep(self._interval)
            await self._flush()

    async def _flush(self) -> None:
        for stream, pending in self._pending.items():
            if self._broken or not pending:
                continue
            data = bytes(pending)
            pending.clear()
            try:
                await self._client.append(self._urls[stream], data)
            except BlobError as error:
                self._fail(error)

    def _fail(self, error: BlobError) -> None:
        self._broken = True
        log.warning("%s: output blobs abandoned (the local copy is complete): %s", self._name,
                    error)
