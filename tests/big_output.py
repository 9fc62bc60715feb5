"""A 100 MB output file of numbered lines, written once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

BIG_LINE = 100
"""Bytes per line: its number, then dots."""
BIG_LINES = 1_048_576


def big_line(number: int) -> bytes:
    return f"{number:09d} ".ljust(BIG_LINE - 1, ".").encode() + b"\n"


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 MB of numbered lines, written a megabyte at a time."""
    path = tmp_path_factory.mktemp("big") / "out.stdout"
    with path.open("wb") as out:
        for first in range(0, BIG_LINES, 10_000):
            last = min(first + 10_000, BIG_LINES)
            out.write(b"".join(big_line(n) for n in range(first, last)))
    return path
