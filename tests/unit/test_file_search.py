"""Searching output files a chunk at a time: boundaries, long lines, both ways, no match."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from core.file_search import Found, Matcher, SearchTextError, search
from core.line_index import LineIndex
from tests.big_output import BIG_LINES, big_file, big_line

__all__ = ["big_file"]  # the 100 MB fixture


def indexed(path: Path, data: bytes, **kwargs: int) -> LineIndex:
    path.write_bytes(data)
    index = LineIndex(str(path), **kwargs)
    index.extend()
    return index


def test_every_line_is_found_whatever_chunk_boundary_it_straddles(tmp_path: Path) -> None:
    lines = [f"row {n:03d} {'needle' if n % 7 == 3 else 'hay'}" for n in range(200)]
    index = indexed(tmp_path / "out", ("\n".join(lines) + "\n").encode(), stride=64)
    matches = [n for n, line in enumerate(lines) if "needle" in line]
    for chunk in (7, 16, 50, 4096):  # chunk ends land inside and between lines and words
        matcher = Matcher("NEEDLE")
        for start in range(0, 200, 5):
            want = next((n for n in matches if n >= start), None)
            got = search(index, matcher, start, wrap=False, chunk=chunk)
            assert got == (None if want is None else Found(want)), (chunk, start)
            back = next((n for n in reversed(matches) if n < start), None)
            got = search(index, matcher, start, backward=True, wrap=False, chunk=chunk)
            assert got == (None if back is None else Found(back)), (chunk, start)


def test_a_match_across_pieces_of_a_line_longer_than_a_chunk(tmp_path: Path) -> None:
    long = b"x" * 10_000 + b"needle" + b"y" * 10_000
    index = indexed(tmp_path / "out", b"first\n" + long + b"\nlast\n")
    for chunk in (4096 + 3, 10_003, 10_002):  # "needle" split by a piece's end
        assert search(index, Matcher("needle"), 0, chunk=chunk) == Found(1)
        assert search(index, Matcher("needle"), 3, backward=True, chunk=chunk) == Found(1)
        assert search(index, Matcher("last"), 0, chunk=chunk) == Found(2)
        assert search(index, Matcher("first"), 3, backward=True, chunk=chunk) == Found(0)


def test_no_match_and_wrapping_past_either_end(tmp_path: Path) -> None:
    index = indexed(tmp_path / "out", b"alpha\nbeta\ngamma\nbeta again\ndelta")
    assert search(index, Matcher("omega"), 0) is None
    assert search(index, Matcher("omega"), 3, backward=True) is None
    assert search(index, Matcher("beta"), 2) == Found(3)
    assert search(index, Matcher("beta"), 4) == Found(1, wrapped=True)
    assert search(index, Matcher("beta"), 4, wrap=False) is None
    assert search(index, Matcher("beta"), 3, backward=True) == Found(1)
    assert search(index, Matcher("beta"), 1, backward=True) == Found(3, wrapped=True)
    assert search(index, Matcher("delta"), 4) == Found(4)  # a last line with no newline
    assert search(index, Matcher("alpha"), 0, backward=True) == Found(0, wrapped=True)


def test_case_regex_and_bad_queries(tmp_path: Path) -> None:
    index = indexed(tmp_path / "out", "ok\nERROR: Disk\nÉTÉ chaud\nerror 42\n".encode())
    assert search(index, Matcher("error: disk"), 0) == Found(1)
    assert search(index, Matcher("été"), 0) == Found(2)
    assert search(index, Matcher(r"^error \d+$", regex=True), 0) == Found(3)
    assert search(index, Matcher(r"error \d+", regex=False), 0) is None  # plain is plain
    assert Matcher("o", regex=False).spans("foo bOo") == [(1, 2), (2, 3), (5, 6), (6, 7)]
    assert Matcher("o+", regex=True).spans("foo bOo") == [(1, 3), (5, 7)]
    with pytest.raises(SearchTextError, match="not a valid regular expression"):
        Matcher("(unclosed", regex=True)
    with pytest.raises(SearchTextError, match="type the text"):
        Matcher("")


def test_a_cancelled_search_stops(tmp_path: Path) -> None:
    index = indexed(tmp_path / "out", b"a\n" * 1000 + b"needle\n")
    calls: list[int] = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    assert search(index, Matcher("needle"), 0, chunk=64, cancelled=cancelled) is None
    assert search(index, Matcher("needle"), 0, chunk=64) == Found(1000)


def test_a_line_deep_in_100_mb_is_found_in_bounded_memory(big_file: Path) -> None:
    index = LineIndex(str(big_file))
    index.extend()
    target = BIG_LINES - 12_345
    text = big_line(target).decode().split(" ")[0]
    tracemalloc.start()
    try:
        found = search(index, Matcher(text), 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert found == Found(target)
    assert peak < 8 * 1024 * 1024  # a chunk, its text and its lowercase copy
    assert search(index, Matcher(f"{10:09d} "), BIG_LINES - 1, backward=True) == Found(10)
    assert search(index, Matcher("not there"), 0) is None
