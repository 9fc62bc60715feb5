"""Finding the next (or previous) line of a big output file that matches a text.

The file is read a chunk at a time, each chunk cut at a line end so that a match is never
split between two chunks; a line longer than a chunk is read in overlapping pieces. Memory
stays at a chunk or two whatever the file's size, and the caller (a worker thread) can stop
a search between chunks.

Plain text matches case-insensitively; a regular expression (Python's ``re``, also
case-insensitive, ``^`` and ``$`` at line ends) is optional.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from core.errors import BadInputError
from core.line_index import CHUNK, LineIndex

OVERLAP = 4096
"""Bytes two pieces of a line longer than a chunk share: the longest match found across."""


class SearchTextError(BadInputError, ValueError):
    """A search that cannot be made (an empty text, a regular expression that is not)."""


class Matcher:
    """Where a search text occurs in decoded text.

    Args:
        text: What to look for.
        regex: ``text`` is a regular expression, not plain text.

    Raises:
        SearchTextError: ``text`` is empty, or not a valid regular expression.
    """

    def __init__(self, text: str, *, regex: bool = False) -> None:
        if not text:
            raise SearchTextError("search: type the text to find")
        self.text = text
        self.regex = regex
        self._needle = text.lower()
        self._pattern: re.Pattern[str] | None = None
        if regex:
            try:
                self._pattern = re.compile(text, re.IGNORECASE | re.MULTILINE)
            except re.error as exc:
                raise SearchTextError(f"search: {text!r} is not a valid regular expression: "
                                 f"{exc}") from None

    def first(self, text: str) -> int:
        """Where the first match in ``text`` starts, or -1."""
        if self._pattern is None:
            return text.lower().find(self._needle)
        found = self._pattern.search(text)
        return found.start() if found else -1

    def last(self, text: str) -> int:
        """Where the last match in ``text`` starts, or -1."""
        if self._pattern is None:
            return text.lower().rfind(self._needle)
        start = -1
        for found in self._pattern.finditer(text):
            start = found.start()
        return start

    def spans(self, line: str) -> list[tuple[int, int]]:
        """Every (start, end) of a match in one line of text, for highlighting."""
        if self._pattern is not None:
            return [m.span() for m in self._pattern.finditer(line) if m.end() > m.start()]
        spans: list[tuple[int, int]] = []
        lowered = line.lower()
        at = lowered.find(self._needle)
        while at >= 0:
            spans.append((at, at + len(self._needle)))
            at = lowered.find(self._needle, at + len(self._needle))
        return spans


@dataclass(frozen=True, slots=True)
class Found:
    """A matching line.

    Attributes:
        line: Its number (from 0).
        wrapped: The search passed the end (or, backwards, the start) to find it.
    """

    line: int
    wrapped: bool = False


def search(index: LineIndex, matcher: Matcher, from_line: int, *, backward: bool = False,
           wrap: bool = True, cancelled: Callable[[], bool] = lambda: False,
           chunk: int = CHUNK) -> Found | None:
    """The first line at or after ``from_line`` that matches (backwards: the last before it).

    Only the part of the file ``index`` has indexed is searched. With ``wrap``, a search
    that reaches the end goes on from the start (backwards: from the end), up to where it
    began. None when nothing matches, or when ``cancelled`` says to stop.
    """
    state = index.state()
    if state.line_count == 0:
        return None
    from_line = max(0, min(from_line, state.line_count))
    begin = index.line_offset(from_line)
    scan = _Scan(matcher, chunk, cancelled)
    with open(index.path, "rb") as handle:
        if not backward:
            line = scan.forward(handle, begin, state.indexed, from_line)
            if line is None and wrap and begin > 0:
                return _found(scan.forward(handle, 0, begin, 0), wrapped=True)
        else:
            line = scan.backward(handle, 0, begin, from_line)
            if line is None and wrap and begin < state.indexed:
                return _found(scan.backward(handle, begin, state.indexed, state.newlines),
                              wrapped=True)
    return _found(line, wrapped=False)


def _found(line: int | None, *, wrapped: bool) -> Found | None:
    return None if line is None else Found(line, wrapped)


@dataclass(slots=True)
class _Scan:
    matcher: Matcher
    chunk: int
    cancelled: Callable[[], bool]

    @property
    def overlap(self) -> int:
        return min(OVERLAP, self.chunk // 2)

    def forward(self, handle: BinaryIO, lo: int, hi: int, line: int) -> int | None:
        """The number of the first matching line in bytes [lo, hi); ``line`` starts at lo."""
        pos = lo
        while pos < hi and not self.cancelled():
            handle.seek(pos)
            data = handle.read(min(self.chunk, hi - pos))
            if not data:
                return None
            advance = len(data)
            if pos + len(data) < hi:
                end = data.rfind(b"\n")
                if end >= 0:  # the partial line after it is read whole with the next chunk
                    data = data[:end + 1]
                    advance = end + 1
                else:  # all of it inside one long line: the next piece overlaps this one
                    advance = len(data) - self.overlap
            text = data.decode("utf-8", errors="replace")
            at = self.matcher.first(text)
            if at >= 0:
                # A decoded text has the file's newlines where the bytes had them.
                return line + text.count("\n", 0, at)
            line += data.count(b"\n", 0, advance)
            pos += advance
        return None

    def backward(self, handle: BinaryIO, lo: int, hi: int, line: int) -> int | None:
        """The number of the last matching line in bytes [lo, hi); ``hi`` is in line ``line``.

        (``line`` is the count of newlines before ``hi``.)
        """
        pos = hi
        while pos > lo and not self.cancelled():
            start = max(lo, pos - self.chunk)
            handle.seek(start)
            data = handle.read(pos - start)
            if len(data) < pos - start:
                return None
            skip = 0
            if start > lo:
                # The line cut at the front is read whole with the next chunk: skip to the
                # first line start inside this one (a newline at its very end does not
                # start a line inside it).
                skip = data.find(b"\n", 0, len(data) - 1) + 1
            body = data[skip:]
            text = body.decode("utf-8", errors="replace")
            at = self.matcher.last(text)
            if at >= 0:
                return line - text.count("\n", at)
            line -= body.count(b"\n")
            if skip or start == lo:
                pos = start + skip
            else:  # all of it inside one long line: the next piece overlaps this one
                pos = start + self.overlap
        return None
