"""Which lines of an output file match a search, so the pane can say "match 3 of 17".

Counted in the search's thread, over the part of the file the index has indexed, a chunk
of whole lines at a time (a line is as the search sees it: its decoded bytes).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

from core.file_search import Matcher
from core.line_index import CHUNK, LineIndex


@dataclass(frozen=True)
class MatchLines:
    """The numbers of the lines that match ``matcher`` in the first ``indexed`` bytes."""

    matcher: Matcher
    path: str
    indexed: int
    lines: tuple[int, ...]

    def ordinal(self, line: int) -> int:
        """1 for the first matching line, … (the line is one of :attr:`lines`)."""
        return bisect_left(self.lines, line) + 1

    def describe(self, line: int) -> str:
        return f"match {self.ordinal(line):,} of {len(self.lines):,}"


def matching_lines(index: LineIndex, matcher: Matcher,
                   cancelled: Callable[[], bool] = lambda: False) -> MatchLines | None:
    """Every matching line of ``index``'s file (None if ``cancelled`` said to stop)."""
    indexed = index.state().indexed
    found: list[int] = []
    number = 0
    carry = b""
    with open(index.path, "rb") as handle:
        left = indexed
        while left > 0:
            if cancelled():
                return None
            data = handle.read(min(CHUNK, left))
            if not data:
                break
            left -= len(data)
            data = carry + data
            end = data.rfind(b"\n") + 1 if left > 0 else len(data)
            data, carry = data[:end], data[end:]
            for line in data.decode("utf-8", errors="replace").split("\n"):
                if line and matcher.first(line) >= 0:
                    found.append(number)
                number += 1
            number -= 1  # the split's last piece is the start of the next line (or nothing)
    return MatchLines(matcher, index.path, indexed, tuple(found))
