"""A run's full output, followed in the append blobs its agent writes (one per stream).

The agent appends to the blobs every flush (15 s on Azure) and once more at the end; the
instance view's 4 KB tails tell when there is something new. Each read costs the client CPU
and the storage account a transaction, and most would find nothing (stderr is nearly always
empty), so reads are paced per blob:

- at most one read per interval (the agent's flush interval): the first one interval after
  the watch starts, since nothing can be uploaded before the first flush;
- a blob that had new bytes is read again one interval later; one that had none is read
  after 2, 4, 8 intervals (at most :data:`QUIET_BACKOFF`) while it stays idle;
- news in the instance view's tail brings the next read forward, to one interval after the
  last at the earliest;
- at the end every stream is read at once (the last upload comes at the agent's exit), except
  one whose reads already hold all the output its final tail reports: an empty tail when the
  blob gave nothing, or a tail under the 4 KB cap (so the whole stream) equal to what was read.

Where the instance view's tail is the stream's exact bytes (the Linux handler's: the last
4,096 bytes of the file, invalid UTF-8 as U+FFFD; ``exact_tails``), a tail under 4,096 bytes
without U+FFFD is not a tail but the whole stream so far: its new bytes are delivered from
the tail, and that stream's blob is not read at all while its tails stay whole (the empty
stderr of nearly every run included). A run whose output stays under 4 KB then costs no blob
read; the blob is followed from the first tail at the cap on (or one that decodes with
U+FFFD: a character cut at either edge, or output holding U+FFFD itself), reading from byte 0
so the bytes past what the tails gave are never skipped. Before the first instance view
nothing is known, so nothing is read. Where the tail's encoding is not documented
(Windows), the blobs are followed as above and the tail only says when to read.

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
from collections.abc import AsyncIterator, Iterable, Mapping

from core.azure.blob import BlobError
from core.azure.blob_tail import BlobTailer
from core.events import OutputAppended
from core.model import TAIL_BYTES, MachineId, Stream

log = logging.getLogger(__name__)

QUIET_BACKOFF = 8
"""An idle blob is still read at least every this many intervals."""
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
        exact_tails: The instance view's tails are the stream's bytes, so a whole one (under
            4,096 bytes, no U+FFFD) stands for the blob (see the module docstring).
    """

    def __init__(self, machine_id: MachineId, name: str, tailers: Mapping[Stream, BlobTailer],
                 interval: float, *, exact_tails: bool = False) -> None:
        self.machine_id = machine_id
        self.name = name
        self.interval = interval
        self.exact_tails = exact_tails
        self._tailers = dict(tailers)
        self._covered: set[Stream] = set(self._tailers) if exact_tails else set()
        """Streams whose last tail is the whole stream: their blobs are not read."""
        self._delivered: dict[Stream, int] = {}
        """Bytes of each stream handed out so far, from the blob or from whole tails."""
        self._whole_tails: dict[Stream, bytes] = {}
        """The last whole tail of each covered stream, as bytes."""
        self._due: dict[Stream, float] = {}
        """When each stream's blob is next read (loop time); set on first use."""
        self._last_read: dict[Stream, float] = {}
        self._reported: dict[Stream, str] = {}
        """Each stream's tail in the last instance view."""
        self._idle: dict[Stream, int] = {}
        """Reads in a row that found nothing, per stream."""
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
        followed = [s for s in self._tailers if s not in self._covered]
        if not followed:
            return None
        now = asyncio.get_running_loop().time()
        return max(0.0, min(self._due_at(s, now) for s in followed) - now)

    def reported(self, tails: Mapping[Stream, str]) -> None:
        """The instance view's tails, as a poll just found them.

        A changed tail is news: the blob has it too, or soon will, so it is read as soon as
        one interval has passed since its last read. An unchanged tail that the blob already
        ends with says there was nothing new at the agent's last report: the next read is
        then one interval away at the soonest (within the idle cap).
        """
        now = asyncio.get_running_loop().time()
        for stream, tail in tails.items():
            if stream not in self._tailers:
                continue
            whole = self._whole_tail(tail)
            if whole is not None:
                self._covered.add(stream)
                self._whole_tails[stream] = whole
                self._reported[stream] = tail
                continue
            self._covered.discard(stream)
            if self._reported.get(stream, "") != tail:
                self._reported[stream] = tail
                last = self._last_read.get(stream)
                self._due[stream] = now if last is None else max(now, last + self.interval)
                self._idle[stream] = 0
            elif self._holds(stream, tail):
                # Never past the idle cap: a tail can stay the same while output grows
                # (output that repeats itself), and frequent polls must not starve the blob.
                latest = self._last_read.get(stream, now) + self.interval * QUIET_BACKOFF
                due = self._due_at(stream, now)
                self._due[stream] = max(due, min(now + self.interval, latest))

    def _due_at(self, stream: Stream, now: float) -> float:
        # Nothing can be in a blob before the agent's first flush: one interval from now.
        return self._due.setdefault(stream, now + self.interval)

    def _whole_tail(self, tail: str) -> bytes | None:
        """``tail``'s bytes if it is the whole stream (see the module docstring), else None."""
        if not self.exact_tails or "\ufffd" in tail:
            return None
        data = tail.encode("utf-8")
        return data if len(data) < TAIL_BYTES else None

    async def read(self, *, every: bool = False) -> AsyncIterator[OutputAppended]:
        """New bytes of the whole tails, then of the blobs that are due (``every``: of all
        of them), in order."""
        for stream in sorted(self._covered):
            if (event := self._from_tail(stream)) is not None:
                yield event
        now = asyncio.get_running_loop().time()
        streams = [s for s in self._tailers if every or (
            s not in self._covered and self._due_at(s, now) <= now)]
        async for event in self._read(streams):
            yield event

    def _from_tail(self, stream: Stream) -> OutputAppended | None:
        """The bytes of ``stream``'s last whole tail past those handed out already."""
        whole = self._whole_tails.get(stream, b"")
        done = self._delivered.get(stream, 0)
        if len(whole) <= done:
            return None
        self._delivered[stream] = len(whole)
        return OutputAppended(self.machine_id, stream, done, whole[done:])

    async def _read(self, streams: Iterable[Stream]) -> AsyncIterator[OutputAppended]:
        """New bytes of ``streams``' blobs, in order; then when to read each next."""
        loop = asyncio.get_running_loop()
        for stream in streams:
            tailer = self._tailers.get(stream)
            if tailer is None:
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
                    if (event := self._past_delivered(stream, chunk.offset, chunk.data)):
                        yield event
                if not chunk.more:
                    break
            now = loop.time()
            idle = 0 if found else self._idle.get(stream, 0) + 1
            self._idle[stream] = idle
            self._last_read[stream] = now
            self._due[stream] = now + self.interval * min(2 ** idle, QUIET_BACKOFF)

    def _past_delivered(self, stream: Stream, offset: int, data: bytes
                        ) -> OutputAppended | None:
        """The part of a blob chunk at ``offset`` that the whole tails did not give yet."""
        done = self._delivered.get(stream, 0)
        end = offset + len(data)
        if end <= done:
            return None
        self._delivered[stream] = end
        if offset < done:
            data, offset = data[done - offset:], done
        return OutputAppended(self.machine_id, stream, offset, data)

    async def drain(self, tails: Mapping[Stream, str], grace: float
                    ) -> AsyncIterator[OutputAppended]:
        """Read until every blob holds what the final tails show, for at most ``grace`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        # A whole final tail is all of its stream: nothing to read.
        self.reported(tails)
        for stream in sorted(self._covered):
            if (event := self._from_tail(stream)) is not None:
                yield event
        # A stream with output is read once more even if it seems to hold its tail (the last
        # upload comes at the agent's exit, and output that repeats itself can end with the
        # tail long before it ends), unless what was read is the whole output for certain.
        pending = [s for s in self._tailers
                   if s not in self._covered and not self._whole(s, tails.get(s, ""))]
        while pending:
            async for event in self._read(pending):
                yield event
            pending = [s for s in pending if s in self._tailers and not self._holds(
                s, tails.get(s, ""))]
            if not pending or loop.time() >= deadline:
                break
            await asyncio.sleep(min(self.interval, 0.5))
        for stream in sorted(pending):
            log.warning("%s: the %s blob still lacks the end of the output after %g s",
                        self.name, stream.value, grace)
            reason, hinted = self._why_short(stream, grace)
            delivered = self._delivered.get(stream, 0)
            if delivered == 0:
                # Nothing came from the blob: the tail is all the output there is, as for a
                # run without blobs (and, unlike a live tail, it outlasts the run).
                yield OutputAppended(self.machine_id, stream, 0,
                                     tails[stream].encode("utf-8"))
                self._delivered[stream] = len(tails[stream].encode("utf-8"))
                reason += ", so only the instance view's tail (the last 4 KB at most) is stored"
            elif self._offsets.get(stream, 0) == 0:
                reason += (f"; only the first {delivered:,} bytes, which the instance view "
                           "showed while the output was under 4 KB, are stored")
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

    def _whole(self, stream: Stream, tail: str) -> bool:
        """Whether the bytes read so far are all the output the final tail reports.

        True when the tail is empty and the blob gave nothing (the agent reported no output),
        or when the bytes read are exactly the tail's text and hold no invalid UTF-8 (no
        U+FFFD in the tail): valid UTF-8 decodes one way, so the bytes are the tail's, which
        is then under the 4,096-byte cap and so the whole stream, not its last part.
        """
        read = self._offsets.get(stream, 0)
        if not tail:
            return read == 0
        end = self._ends.get(stream, b"")
        if read != len(end) or read >= TAIL_BYTES or "\ufffd" in tail:
            return False
        return end.decode("utf-8", "replace") == tail

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
