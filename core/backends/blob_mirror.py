"""A copy of a run's output in append blobs, written by fleetrun itself (the SSH path).

On Azure the agent writes each stream to its append blob; an SSH host has no agent, so
fleetrun does the same from the bytes it receives: the blobs are created (replaced) when the
run starts and appended to every ``interval`` seconds and once at the end, as the handler
does. Storage trouble never fails a run: it is logged, and the local copy is complete anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.azure.blob import AppendBlobClient, BlobError
from core.azure.run_commands import OutputTargets
from core.model import Stream

log = logging.getLogger(__name__)


class BlobMirror:
    """Appends one run's streams to its output blobs.

    Args:
        client: The blob client.
        targets: The output and error blob URLs.
        name: The machine's name, for log lines.
        interval: Seconds between appends while the run goes.
    """

    def __init__(self, client: AppendBlobClient, targets: OutputTargets, name: str,
                 interval: float = 2.0) -> None:
        self._client = client
        self._urls = {Stream.STDOUT: targets.output_uri, Stream.STDERR: targets.error_uri}
        self._name = name
        self._interval = interval
        self._pending: dict[Stream, bytearray] = {s: bytearray() for s in Stream}
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

    def add(self, stream: Stream, data: bytes) -> None:
        if not self._broken:
            self._pending[stream] += data

    async def close(self) -> None:
        """The run ended: append what is left."""
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
