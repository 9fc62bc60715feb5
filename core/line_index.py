"""Lines of a growing output file, found without holding the file: a sparse line index.

A machine's output can be 100 MB or more and grows while it is shown, so nothing here
keeps the file in memory, nor one entry per line. :class:`LineIndex` reads the file once,
in chunks, as it grows (:meth:`LineIndex.extend`, safe to run in a worker thread) and keeps
a *checkpoint* — a line number and the byte offset where that line starts — at the first
line start past every :data:`STRIDE` bytes: a few kilobytes of checkpoints per 100 MB.
Reading any line then costs reading one stride of the file (:meth:`LineIndex.read_lines`).

Lines end at ``\\n``; a ``\\r`` before it is dropped. A line longer than
:data:`MAX_LINE_BYTES` is shown cut, saying how many bytes were left out.
:func:`display_text` turns a line's bytes into text that is safe on a terminal: invalid
UTF-8 becomes U+FFFD, control characters are drawn visibly (never interpreted) and tabs
expanded.
"""

from __future__ import annotations

import os
import threading
from array import array
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass

from core.terminal_text import inert_bytes

STRIDE = 64 * 1024
"""Bytes between checkpoints: the most read from the file to find any line start."""

MAX_LINE_BYTES = 8 * 1024
"""Bytes of a line that are shown; the rest of a longer line is left out."""

CHUNK = 1 << 20
"""Bytes read at once while indexing."""

_CACHED_LINES = 100_000
"""Lines kept decoded from recent reads (a block of empty lines holds one per byte)."""

def display_text(raw: bytes) -> str:
    """A line's bytes as text a terminal shows literally (:func:`core.terminal_text.inert`).

    Invalid UTF-8 becomes U+FFFD, tabs become spaces (every 8 columns) and every control
    character, escape sequences' ESC included, is drawn as a visible picture (``␛[31m``):
    nothing in an output can move the cursor, retitle the terminal or ring its bell.
    """
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    text = inert_bytes(raw)
    return text.expandtabs(8) if "\t" in text else text


@dataclass(frozen=True, slots=True)
class Line:
    """One line as read from the file.

    Attributes:
        raw: Its bytes without the ``\\n`` (at most :data:`MAX_LINE_BYTES` of them).
        cut: Bytes of the line left out of ``raw`` (0 for most lines).
    """

    raw: bytes
    cut: int = 0

    @property
    def text(self) -> str:
        return display_text(self.raw)


@dataclass(frozen=True, slots=True)
class IndexState:
    """The index at one moment.

    Attributes:
        indexed: Bytes of the file indexed.
        newlines: Newlines in them.
        last_line_start: Where the last line starts (``indexed`` after a final newline).
        checkpoints: Checkpoints recorded.
    """

    indexed: int
    newlines: int
    last_line_start: int
    checkpoints: int

    @property
    def line_count(self) -> int:
        return self.newlines + (self.indexed > self.last_line_start)


class LineIndex:
    """Where the lines of the file at ``path`` start, for what has been indexed so far.

    One thread at a time may :meth:`extend` the index (a worker, say) while another reads
    it: every count and line read is consistent with one moment of indexing.

    Args:
        path: The file; a file that does not exist (yet) reads as empty.
        stride: Bytes between checkpoints (tests make it small).
        max_line: Bytes of a line that :meth:`read_lines` returns.
    """

    def __init__(self, path: str, *, stride: int = STRIDE,
                 max_line: int = MAX_LINE_BYTES) -> None:
        self.path = path
        self.stride = stride
        self.max_line = max_line
        self._cp_lines = array("Q", [0])
        self._cp_offsets = array("Q", [0])
        self._indexed = 0
        self._newlines = 0
        self._last_line_start = 0
        self._next_checkpoint = stride
        self._state = threading.Lock()
        self._extending = threading.Lock()
        self._blocks: OrderedDict[int, tuple[int, list[bytes], int]] = OrderedDict()

    # -- state ----------------------------------------------------------------------------

    def state(self) -> IndexState:
        """Counts that belong together, taken at once (another thread may be extending)."""
        with self._state:
            return IndexState(self._indexed, self._newlines, self._last_line_start,
                             len(self._cp_offsets))

    @property
    def indexed(self) -> int:
        """Bytes of the file indexed so far."""
        return self.state().indexed

    @property
    def line_count(self) -> int:
        """Lines in the indexed bytes (an unterminated last line counts)."""
        return self.state().line_count

    @property
    def memory_bytes(self) -> int:
        """Bytes the index itself holds: its checkpoints (the line cache aside)."""
        return sum(a.buffer_info()[1] * a.itemsize for a in (self._cp_lines, self._cp_offsets))

    def file_size(self) -> int:
        """The file's size now (0 while it does not exist)."""
        try:
            return os.stat(self.path).st_size
        except FileNotFoundError:
            return 0

    # -- indexing -------------------------------------------------------------------------

    def extend(self, max_bytes: int | None = None, *, chunk: int = CHUNK) -> int:
        """Index what the file gained (at most ``max_bytes`` of it); returns bytes indexed.

        Reads only bytes not indexed yet, ``chunk`` at a time, so its cost is that of the
        new bytes whatever the file's size. The file is assumed to only grow.
        """
        with self._extending:
            start = pos = self._indexed
            end = self.file_size()
            if max_bytes is not None:
                end = min(end, start + max_bytes)
            if end <= start:
                return 0
            with open(self.path, "rb") as handle:
                handle.seek(start)
                while pos < end and (data := handle.read(min(chunk, end - pos))):
                    self._scan(data, pos)
                    pos += len(data)
            return pos - start

    def _scan(self, data: bytes, base: int) -> None:
        """Index ``data``, the file's bytes from ``base`` (= the bytes indexed so far)."""
        found_lines: list[int] = []
        found_offsets: list[int] = []
        next_checkpoint = self._next_checkpoint
        counted = counted_to = 0
        while True:
            # A line starts at s when byte s-1 is a newline: look for one at or past
            # next_checkpoint-1 (it may lie in an earlier chunk's range: a long line).
            at = data.find(b"\n", max(0, next_checkpoint - 1 - base))
            if at < 0:
                break
            counted += data.count(b"\n", counted_to, at + 1)
            counted_to = at + 1
            found_lines.append(self._newlines + counted)
            found_offsets.append(base + at + 1)
            next_checkpoint = base + at + 1 + self.stride
        newlines = counted + data.count(b"\n", counted_to)
        last = data.rfind(b"\n")
        with self._state:
            self._cp_lines.extend(found_lines)
            self._cp_offsets.extend(found_offsets)
            self._next_checkpoint = next_checkpoint
            self._newlines += newlines
            if last >= 0:
                self._last_line_start = base + last + 1
            self._indexed = base + len(data)

    # -- reading --------------------------------------------------------------------------

    def line_offset(self, number: int) -> int:
        """The byte offset where line ``number`` starts (the indexed size past the end)."""
        snap = self.state()
        if number >= snap.line_count:
            return snap.indexed
        block = bisect_right(self._cp_lines, number, 0, snap.checkpoints) - 1
        offset = self._cp_offsets[block]
        skip = number - self._cp_lines[block]
        if skip:
            # Every line start of a block lies within one stride of its checkpoint.
            data = self._read(offset, min(self.stride, snap.indexed - offset))
            at = -1
            for _ in range(skip):
                at = data.index(b"\n", at + 1)
            offset += at + 1
        return offset

    def read_lines(self, first: int, count: int) -> list[Line]:
        """Lines ``first`` to ``first + count`` (fewer past the end), from the file.

        Fewer, too, if the file lost bytes it had when indexed (replaced or truncated).
        """
        snap = self.state()
        end = min(first + count, snap.line_count)
        lines: list[Line] = []
        number = max(0, first)
        while number < end:
            block = bisect_right(self._cp_lines, number, 0, snap.checkpoints) - 1
            pieces, last_length = self._block(block, snap)
            start = self._cp_lines[block]
            upto = min(end - start, len(pieces))
            if upto <= number - start:  # the file shrank under us (it should only grow)
                break
            for at in range(number - start, upto):
                raw = pieces[at]
                lines.append(self._line(raw, last_length if at == len(pieces) - 1
                                        else len(raw)))
            number = start + upto
        return lines

    def _block(self, block: int, snap: IndexState) -> tuple[list[bytes], int]:
        """The lines of checkpoint ``block`` up to the next one (or the indexed end).

        Returns their bytes (the last one maybe only its start) and the last one's length.
        """
        closed = block + 1 < snap.checkpoints
        cached = self._blocks.get(block)
        # A block read once closed never changes (the file only grows); one read while it
        # was the last is good only for as long as nothing was indexed since.
        if cached is not None and cached[0] == (-1 if closed else snap.indexed):
            self._blocks.move_to_end(block)
            return cached[1], cached[2]
        start = self._cp_offsets[block]
        if closed:
            end, count = self._cp_offsets[block + 1], self._cp_lines[block + 1]
            terminated = True
        else:
            end, count = snap.indexed, snap.line_count
            terminated = snap.last_line_start == snap.indexed
        count -= self._cp_lines[block]
        # Every line but the last starts and ends within one stride of the checkpoint; the
        # last may run on for megabytes, and only its first max_line bytes are needed.
        data = self._read(start, min(end, start + self.stride + self.max_line) - start)
        pieces = data.split(b"\n", count)[:count]
        last_length = 0
        if pieces:
            last_start = start + sum(map(len, pieces[:-1])) + len(pieces) - 1
            last_length = end - terminated - last_start
        self._blocks[block] = (-1 if closed else snap.indexed, pieces, last_length)
        self._blocks.move_to_end(block)
        cached_lines = sum(len(kept[1]) for kept in self._blocks.values())
        while cached_lines > _CACHED_LINES and len(self._blocks) > 1:
            cached_lines -= len(self._blocks.popitem(last=False)[1][1])
        return pieces, last_length

    def _line(self, raw: bytes, length: int) -> Line:
        if length <= self.max_line:
            return Line(raw[:length])
        kept = _cut_utf8(raw[:self.max_line])
        return Line(kept, length - len(kept))

    def _read(self, offset: int, size: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(size)


def _cut_utf8(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut in half at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return data
        if byte >= 0xC0:  # a lead byte: is its character complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data
