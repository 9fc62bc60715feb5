"""A run's full output, followed in the append blobs its agent writes (one per stream).

The agent appends to the blobs every flush (15 s on Azure) and once more at the end; the
instance view's 4 KB tails tell when there is something new. Quiet blobs are read less
often: most streams are quiet most of the time (stderr nearly always), and each read costs
the client CPU and the storage account a transaction.

A blob can stop short of the output: the agent sends each flush's new bytes as one Append
Block, which storage refuses over its block limit (100 MiB, 4 MiB at older versions), and
it neither splits nor reports that; the run still ends Succeeded. So at the end the blobs
are read until they end with the instance view's tails, and one that never does is named
(:meth:`BlobOutput.shortfall`) rather than passed off as the whole output. What a short
blob did deliver is kept as it is (never spliced with the tail, which would hide the gap);
a blob that delivered nothing leaves the tail as the stored output, as a run without blobs
does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping

from core.azure.blob import BlobError
from core.azure.blob_tail import BlobTailer
from core.events import OutputAppended
from core.model import TAIL_BYTES, MachineId, Stream

log = logging.getLogger(__name__)

QUIET_BACKOFF = 8
"""A quiet blob is still read at least every this many intervals."""
BLOCK_HINT = ("Likely cause: the agent uploads each interval's new output as one block, and "
              "storage refuses a block over 100 MiB (4 MiB at older storage versions).")
"""The likely cause of a blob that stops short while its reads succeed."""


class BlobOutput:
    """Follows one machine's output blobs.

    Args:
        machine_id: Whose output this is (for the events).
        name: The machine's name, for log lines.
        tailers: A tailer per stream that has a blob.
        interval: Seconds between reads of a blob that has new output.
    """

    def __init__(self, machine_id: MachineId, name: str, tailers: Mapping[Stream, BlobTailer],
                 interval: float) -> None:
        self.machine_id = machine_id
        self.name = name
        self.interval = interval
        self._tailers = dict(tailers)
        self._due: dict[Stream, float] = {}
        self._idle: dict[Stream, int] = {}
        self._ends: dict[Stream, bytes] = {}
        self._offsets: dict[Stream, int] = {}
        """Bytes of each stream's current blob read so far (kept after it is dropped)."""
        self._exists: set[Stream] = set()
        self._trouble: dict[Stream, str] = {}
        """The last read failure of each stream, until a read succeeds again."""
        self._short: dict[Stream, tuple[str, bool]] = {}
        """Streams whose blobs do not hold their whole output: why, and whether
        :data:`BLOCK_HINT` applies (the blob stopped short while reading it worked)."""

    @property
    def active(self) -> bool:
        """Whether any blob is still followed."""
        return bool(self._tailers)

    def next_read_in(self) -> float | None:
        """Seconds until a blob is due to be read; None when no blob is followed."""
        if not self._tailers:
            return None
        loop = asyncio.get_running_loop()
        return max(0.0, min(self._due.get(s, 0.0) for s in self._tailers) - loop.time())

    def news(self, stream: Stream) -> None:
        """The agent reported new output on ``stream``: its blob has it too, or soon will."""
        self._due[stream], self._idle[stream] = 0.0, 0

    async def read(self, *, every: bool = False) -> AsyncIterator[OutputAppended]:
        """New bytes of the blobs that are due (``every``: of all of them), in order."""
        loop = asyncio.get_running_loop()
        for stream, tailer in list(self._tailers.items()):
            if not every and self._due.get(stream, 0.0) > loop.time():
                continue
            found = False
            while True:
                try:
                    chunk = await tailer.poll()
                except BlobError as error:
                    log.warning("%s: reading the %s blob failed: %s", self.name, stream.value,
                                error)
                    self._trouble[stream] = f"{error.status} {error.code}".strip()
                    break
                self._trouble.pop(stream, None)
                if chunk.reset:
                    # Someone re-created the blob (another PUT of this name): its bytes belong
                    # to another run, so this stream's full output stops here.
                    log.warning("%s: the %s blob was re-created by another run; no more of it "
                                "is read", self.name, stream.value)
                    del self._tailers[stream]
                    self._short[stream] = (
                        f"the {stream.value} blob was re-created by another run after "
                        f"{self._offsets.get(stream, 0):,} bytes", False)
                    break
                if chunk.exists:
                    self._exists.add(stream)
                self._offsets[stream] = tailer.offset
                if chunk.data:
                    found = True
                    end = self._ends.get(stream, b"") + chunk.data
                    self._ends[stream] = end[-2 * TAIL_BYTES:]
                    yield OutputAppended(self.machine_id, stream, chunk.offset, chunk.data)
                if not chunk.more:
                    break
            idle = 0 if found else self._idle.get(stream, 0) + 1
            self._idle[stream] = idle
            self._due[stream] = loop.time() + self.interval * min(2 ** idle, QUIET_BACKOFF)

    async def drain(self, tails: Mapping[Stream, str], grace: float
                    ) -> AsyncIterator[OutputAppended]:
        """Read until every blob holds what the final tails show, for at most ``grace`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        pending = set(self._tailers)
        while True:
            async for event in self.read(every=True):
                yield event
            pending = {s for s in pending if s in self._tailers and not self._holds(
                s, tails.get(s, ""))}
            if not pending or loop.time() >= deadline:
                break
            await asyncio.sleep(min(self.interval, 0.5))
        for stream in sorted(pending):
            log.warning("%s: the %s blob still lacks the end of the output after %g s",
                        self.name, stream.value, grace)
            reason, hinted = self._why_short(stream, grace)
            if self._offsets.get(stream, 0) == 0:
                # Nothing came from the blob: the tail is all the output there is, as for a
                # run without blobs (and, unlike a live tail, it outlasts the run).
                yield OutputAppended(self.machine_id, stream, 0,
                                     tails[stream].encode("utf-8"))
                reason += ", so only the instance view's tail (the last 4 KB at most) is stored"
            else:
                reason += "; only those bytes are stored"
            self._short[stream] = (reason, hinted)

    def shortfall(self) -> str:
        """What is missing from the full output, for the machine's result ("" if nothing).

        Meaningful after :meth:`drain`; names each stream whose blob does not hold all the
        output the machine reported, with the bytes it does hold and what was stored.
        """
        if not self._short:
            return ""
        reasons = "; ".join(self._short[stream][0] for stream in sorted(self._short))
        hint = BLOCK_HINT if any(hinted for _, hinted in self._short.values()) else ""
        return f"output incomplete: {reasons}. {hint}".rstrip()

    def _why_short(self, stream: Stream, grace: float) -> tuple[str, bool]:
        """Why ``stream``'s blob never ended with its tail, and whether the hint applies."""
        held = self._offsets.get(stream, 0)
        trouble = self._trouble.get(stream)
        if trouble:
            return (f"the {stream.value} blob could not be read past byte {held:,} ({trouble}, "
                    f"still {grace:g} s after the run ended)", False)
        if stream not in self._exists:
            return (f"the {stream.value} blob did not exist (still {grace:g} s after the run "
                    "ended)", False)
        return (f"the {stream.value} blob holds {held:,} bytes and, {grace:g} s after the run "
                "ended, still lacked the end the machine reported", True)

    def _holds(self, stream: Stream, tail: str) -> bool:
        """Whether the blob read so far ends with all the instance view's tail shows.

        The tail is text: invalid UTF-8 (a character cut at the 4096-byte edge) became
        U+FFFD, so both sides are compared as decoded text, minus the first character.
        """
        if not tail:
            return True
        shown = tail[1:] if len(tail) > 1 else tail
        end = self._ends.get(stream, b"")
        return bool(end) and end.decode("utf-8", "replace").endswith(shown)
