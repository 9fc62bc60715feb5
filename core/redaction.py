"""Protected values masked out of everything machines say: one rule, applied at ingest.

The *secrets* of a command are its protected parameter values and its run-as password.
Wherever one occurs in a machine's output (either stream), its 4 KB tails, its error or
its state messages, fleetrun keeps and shows ``***`` instead. The fan-out engine applies
this to every event before the output store, the journal or any front end sees it
(:mod:`core.fanout`), so every view and every file agrees.

The rule:

- Every occurrence of every secret is masked, matched as bytes (the secret's UTF-8).
  Occurrences that overlap (one secret inside another, or a value like ``abab`` in
  ``ababab``) become a single ``***``; ``masked`` counts the ``***`` written.
- A secret is masked whatever its length, as CI systems mask any registered secret: a
  one-character protected value masks that character everywhere, which makes the output
  hard to read but never shows the value. Such a value protects nothing anyway (it is
  guessed at once); the run is not refused for it.
- A stream arrives in chunks, so a secret can be cut between two of them. A
  :class:`StreamRedactor` holds back only the bytes at a chunk's end that could be the
  start of a secret (at most the longest secret less one byte) until the next chunk says
  whether they are, and lets them go at the stream's end. The result is the same however
  the stream was cut.
- A tail is a snapshot of a stream's last 4096 bytes: it can start in the middle of a
  secret, or end in the middle of one still being printed. A fragment of a secret at either
  edge is masked too once it is :data:`EDGE_FRAGMENT` bytes or more (shorter ones would
  mask ordinary text all the time, and tell little). So is one at a stream's very start:
  where a service kept no more than the tail, the tail is the stored output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import AnyStr

from core.model import REDACTED, Command, Stream

MASK = REDACTED.encode()

EDGE_FRAGMENT = 3
"""Bytes of a secret, cut at a tail's first or last byte, from which the fragment is masked."""


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a redacted stream stands, in the source's byte offsets.

    Attributes:
        source: Source offset of the end of what was let through (the stored output ends
            there; bytes held back come after it).
        carry: Source bytes after ``source`` that are the rest of a masked occurrence whose
            ``***`` was already let through (they will produce nothing more).
        masked: ``***`` let through up to ``source``.
    """

    source: int = 0
    carry: int = 0
    masked: int = 0


class SecretMask:
    """The secrets of one or more commands, compiled to mask any text or bytes."""

    def __init__(self, values: Iterable[str]) -> None:
        # A value that is the mask itself would only ever be replaced by itself.
        unique = {v for v in values if v and v != REDACTED}
        ordered = sorted(unique, key=lambda v: (-len(v.encode()), v))
        self.secrets: tuple[bytes, ...] = tuple(v.encode() for v in ordered)
        self._texts: tuple[str, ...] = tuple(ordered)
        # Longest first: at any position the first alternative that matches is the longest.
        self._bytes_pattern = (re.compile(b"|".join(map(re.escape, self.secrets)))
                               if self.secrets else None)
        self._text_pattern = (re.compile("|".join(map(re.escape, ordered)))
                              if ordered else None)
        self.longest = max((len(s) for s in self.secrets), default=0)
        self._longest_text = max((len(t) for t in self._texts), default=0)

    @classmethod
    def of(cls, commands: Iterable[Command]) -> SecretMask:
        return cls(v for c in commands for v in c.secret_values())

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """Where secrets occur in ``data``, overlapping occurrences merged, in order."""
        return _spans(self._bytes_pattern, data, self.longest)

    def mask(self, data: bytes) -> tuple[bytes, int]:
        """``data`` with every occurrence masked, and how many ``***`` it holds."""
        spans = self.spans(data) if self._bytes_pattern is not None else []
        return _replace(data, spans, MASK), len(spans)

    def mask_text(self, text: str) -> tuple[str, int]:
        """Like :meth:`mask`, for text (an error, a message)."""
        if self._text_pattern is None:
            return text, 0
        spans = _spans(self._text_pattern, text, self._longest_text)
        return _replace(text, spans, REDACTED), len(spans)

    def text(self, text: str) -> str:
        """``text`` with every occurrence masked."""
        return self.mask_text(text)[0]

    def mask_tail(self, tail: bytes) -> bytes:
        """A tail masked whole, fragments of a secret cut at either edge included."""
        if not self.secrets:
            return tail
        spans = self.spans(tail)
        head = self.cut_start(tail)
        if head:
            spans.append((0, head))
        end = self.partial_prefix(tail)
        if end >= EDGE_FRAGMENT:
            spans.append((len(tail) - end, len(tail)))
        return _replace(tail, _merged(spans), MASK)

    def partial_prefix(self, data: bytes) -> int:
        """The length of the longest end of ``data`` that a secret starts with (not whole)."""
        best = 0
        for secret in self.secrets:
            for size in range(min(len(secret) - 1, len(data)), best, -1):
                if data.endswith(secret[:size]):
                    best = size
                    break
        return best

    def could_grow_into_cut_start(self, data: bytes) -> bool:
        """Whether more bytes after ``data`` could make a longer :meth:`cut_start` of it."""
        for secret in self.secrets:
            for size in range(max(EDGE_FRAGMENT, len(data) + 1), len(secret)):
                if secret[-size:].startswith(data):
                    return True
        return False

    def cut_start(self, data: bytes) -> int:
        """The length of the longest start of ``data`` that a secret ends with (not whole),
        if it is :data:`EDGE_FRAGMENT` bytes or more; else 0."""
        best = 0
        for secret in self.secrets:
            for size in range(min(len(secret) - 1, len(data)), max(best, EDGE_FRAGMENT - 1), -1):
                if data.startswith(secret[-size:]):
                    best = size
                    break
        return best


class StreamRedactor:
    """Masks one stream that arrives in chunks at source offsets, each byte once.

    :meth:`feed` takes a chunk at its source offset: bytes before :attr:`consumed` were
    taken already (a re-read range) and are skipped, so the stream is masked exactly once
    however often a range is delivered. It returns what can be let through now.

    Args:
        mask: The secrets.
        start: Where an earlier process left this stream (``fleetrun attach``); its stored
            output ends at ``start.source``.
    """

    def __init__(self, mask: SecretMask, start: Mark | None = None) -> None:
        start = start or Mark()
        self.mask = mask
        self.consumed = start.source
        """Source bytes taken in: let through, masked or held back."""
        self.masked = start.masked
        """``***`` let through so far."""
        self._held = b""
        self._carry = start.carry
        self._at_start = start == Mark()
        """Nothing let through yet: the stream may start with the end of a secret (a 4 KB
        tail stored as the output), masked like a tail's first bytes."""

    @property
    def plain(self) -> bool:
        """Nothing to mask, nothing carried: the output is the source, byte for byte."""
        return not self.mask and not self._carry

    @property
    def mark(self) -> Mark:
        """Where the output let through so far ends, in source offsets."""
        return Mark(self.consumed - len(self._held), self._carry, self.masked)

    def feed(self, offset: int, data: bytes) -> bytes:
        """The bytes of ``data`` (at source ``offset``) that can be let through, masked."""
        end = offset + len(data)
        if end <= self.consumed:
            return b""
        if offset < self.consumed:
            data = data[self.consumed - offset :]
        # A chunk past the end (a backend lost some bytes) is kept: the gap cannot be filled.
        self.consumed = end
        if self.plain:
            return data
        return self._let_through(self._held + data, final=False)

    def flush(self) -> bytes:
        """The stream has ended: what was held back, masked."""
        if not self._held and not self._carry:
            return b""
        return self._let_through(self._held, final=True)

    def _let_through(self, buffer: bytes, *, final: bool) -> bytes:
        spans = self.mask.spans(buffer) if self.mask else []
        if self._at_start:
            if not final and self.mask.could_grow_into_cut_start(buffer):
                self._held = buffer
                return b""
            self._at_start = False
            head = self.mask.cut_start(buffer)
            if head:
                spans = _merged([(0, head), *spans])
        # The carry can reach past the buffer: after a resume, the re-read comes in pieces.
        carry = self._carry
        if carry:
            # The rest of an occurrence already masked: it joins whatever overlaps it.
            while spans and spans[0][0] < carry:
                carry = max(carry, spans.pop(0)[1])
            spans.insert(0, (0, carry))
        cut = len(buffer) if final else len(buffer) - self.mask.partial_prefix(buffer)
        out = bytearray()
        position = 0
        self._carry = 0
        for number, (start, stop) in enumerate(spans):
            continued = number == 0 and bool(carry)
            if start >= cut and not continued:
                break
            out += buffer[position:start]
            if not continued:
                out += MASK
                self.masked += 1
            position = stop
            if stop > cut:
                self._carry = stop - cut
        if position < cut:
            out += buffer[position:cut]
        # A straddling occurrence leaves its rest here too, counted by the carry.
        self._held = buffer[cut:]
        return bytes(out)


@dataclass(frozen=True, slots=True)
class LetThrough:
    """Masked bytes of a stream, and where the stream stood before and after them.

    ``before`` and ``after`` are None where the two map byte for byte (nothing masked,
    nothing carried): the store then has nothing to record.
    """

    data: bytes
    before: Mark | None = None
    after: Mark | None = None

    @property
    def moved(self) -> bool:
        """Whether the stream went on at all (bytes, or a change of state to record)."""
        return bool(self.data) or self.after != self.before


_NOTHING = LetThrough(b"")


class MachineRedaction:
    """Everything one machine says, masked: both streams, their tails, errors, messages.

    Args:
        mask: Its command's secrets.
        starts: Where each stream's stored output ended, for a machine taken up again.
        masked: Occurrences masked before (in errors, or by an earlier process's streams
            when ``starts`` does not say).
    """

    def __init__(self, mask: SecretMask, starts: Mapping[Stream, Mark] | None = None,
                 masked: int = 0) -> None:
        self.mask = mask
        given = starts or {}
        self._stdout = StreamRedactor(mask, given.get(Stream.STDOUT))
        self._stderr = StreamRedactor(mask, given.get(Stream.STDERR))
        self._masked_text = masked

    @property
    def masked(self) -> int:
        """Occurrences masked: the ``***`` in the stored output and in errors."""
        return self._masked_text + self._stdout.masked + self._stderr.masked

    def _stream(self, stream: Stream) -> StreamRedactor:
        return self._stdout if stream is Stream.STDOUT else self._stderr

    def output(self, stream: Stream, offset: int, data: bytes) -> LetThrough:
        """Bytes of ``stream`` at source ``offset``: what can be stored now, masked."""
        redactor = self._stream(stream)
        if redactor.plain:
            return LetThrough(redactor.feed(offset, data))
        before = redactor.mark
        return LetThrough(redactor.feed(offset, data), before, redactor.mark)

    def end(self, stream: Stream) -> LetThrough:
        """The stream has ended: what was held back as a possible start of a secret."""
        redactor = self._stream(stream)
        if redactor.plain:
            return _NOTHING
        before = redactor.mark
        return LetThrough(redactor.flush(), before, redactor.mark)

    def tail(self, tail: bytes) -> bytes:
        return self.mask.mask_tail(tail)

    def message(self, text: str) -> str:
        """A state message (said again and again: not counted)."""
        return self.mask.text(text)

    def error(self, text: str) -> str:
        """The machine's error (counted with its output)."""
        masked, count = self.mask.mask_text(text)
        self._masked_text += count
        return masked


def _spans(pattern: re.Pattern[AnyStr] | None, data: AnyStr, longest: int
           ) -> list[tuple[int, int]]:
    """Every occurrence of ``pattern``'s literals in ``data``, overlapping ones merged."""
    if pattern is None:
        return []
    spans: list[tuple[int, int]] = []
    found = pattern.search(data)
    while found is not None:
        start, stop = found.span()
        # Only an occurrence starting within the last ``longest`` bytes of this one can
        # reach past its end: look for those alone.
        position = max(start + 1, stop - longest + 1)
        while (more := pattern.search(data, position)) is not None and more.start() < stop:
            stop = max(stop, more.end())
            position = max(more.start() + 1, stop - longest + 1)
        spans.append((start, stop))
        found = more
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged


def _replace(data: AnyStr, spans: list[tuple[int, int]], mask: AnyStr) -> AnyStr:
    if not spans:
        return data
    parts: list[AnyStr] = []
    position = 0
    for start, stop in spans:
        parts.append(data[position:start])
        parts.append(mask)
        position = stop
    parts.append(data[position:])
    return data[:0].join(parts)
