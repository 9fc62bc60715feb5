"""Long output lines wrapped at the pane's width: which piece of which line each row shows.

The full-output pane scrolls by file lines either way; wrapped, the rows on screen start at
the top line shown (or, at the end of the file, end with its last line), each line drawn
over as many rows as it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.strip import Strip


def pieces(strip: Strip, width: int) -> list[Strip]:
    """``strip`` cut into rows of ``width`` cells (one row for an empty line)."""
    if strip.cell_length <= width:
        return [strip]
    return list(strip.divide([*range(width, strip.cell_length, width), strip.cell_length]))


def wrapped_rows(first: int, strips: Sequence[Strip], width: int, height: int, *,
                 from_bottom: bool) -> list[tuple[int, Strip]]:
    """The rows of lines ``first``, ``first + 1``… (drawn as ``strips``) wrapped at ``width``.

    Returns (line number, row) pairs, at most ``height`` of them: the first rows, or with
    ``from_bottom`` the last (the end of the file in view).
    """
    rows: list[tuple[int, Strip]] = []
    for number, strip in enumerate(strips, first):
        rows += [(number, piece) for piece in pieces(strip, width)]
        if not from_bottom and len(rows) >= height:
            break
    return rows[-height:] if from_bottom else rows[:height]

