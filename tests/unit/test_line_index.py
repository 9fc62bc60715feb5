"""The sparse line index of output files: growth, line ends, odd bytes, long lines, size."""

from __future__ import annotations

import random
import threading
import tracemalloc
from pathlib import Path

import pytest

from core.line_index import LineIndex, display_text
from tests.big_output import BIG_LINE, BIG_LINES, big_file, big_line

__all__ = ["big_file"]  # the 100 MB fixture


def texts(index: LineIndex, first: int = 0, count: int = 1 << 30) -> list[str]:
    return [line.text for line in index.read_lines(first, count)]


def reference_lines(data: bytes) -> list[bytes]:
    """What the lines of ``data`` are, the slow obvious way."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def test_a_growing_file_is_indexed_by_what_it_gained(tmp_path: Path) -> None:
    path = tmp_path / "out"
    index = LineIndex(str(path))
    assert index.extend() == 0  # nothing printed yet: no file
    assert index.line_count == 0
    assert index.read_lines(0, 10) == []

    path.write_bytes(b"one\ntw")
    assert index.extend() == 6
    assert texts(index) == ["one", "tw"]  # an unfinished last line is shown as it is
    with path.open("ab") as out:
        out.write(b"o\nthree\n")
    assert index.extend() == 8  # only the new bytes are read
    assert index.line_count == 3
    assert texts(index) == ["one", "two", "three"]
    assert index.extend() == 0
    with path.open("ab") as out:
        out.write(b"four")
    index.extend()
    assert texts(index, 2) == ["three", "four"]
    assert index.state().indexed == path.stat().st_size


def test_a_file_that_shrinks_or_vanishes_reads_as_fewer_lines(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"".join(f"line {n}\n".encode() for n in range(1000)))
    index = LineIndex(str(path), stride=256)
    index.extend()
    path.write_bytes(b"line 0\nline 1\n")  # replaced by something shorter
    assert texts(index, 0, 3)[:2] == ["line 0", "line 1"]  # and no error
    assert texts(index, 500, 3) == []
    path.unlink()
    with pytest.raises(FileNotFoundError):  # the pane shows nothing then (FileView._read)
        index.read_lines(900, 3)
    assert index.extend() == 0


def test_lines_read_while_a_block_was_open_are_read_again_once_it_closes(
        tmp_path: Path) -> None:
    path = tmp_path / "out"
    lines = [f"line {n:04d}" for n in range(200)]
    path.write_bytes(("\n".join(lines) + "\n").encode())
    index = LineIndex(str(path), stride=100)
    index.extend(max_bytes=145)  # the second block (from line 10) is open, line 14 cut
    assert texts(index, 10, 5) == [*lines[10:14], "line "]
    index.extend()  # now it is closed (line 20 starts the third), line 14 whole
    assert texts(index, 10, 10) == lines[10:20]


def test_line_ends_crlf_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_bytes(b"dos line\r\nnext\r\n\r\nlast without newline")
    index = LineIndex(str(path))
    index.extend()
    assert texts(index) == ["dos line", "next", "", "last without newline"]

    path.write_bytes(b"a\n\n")
    index = LineIndex(str(path))
    index.extend()
    assert texts(index) == ["a", ""]  # a final newline ends a line, it starts none


def test_odd_bytes_are_shown_safely() -> None:
    assert display_text(b"caf\xc3\xa9 \xff\xfe end") == "café \ufffd\ufffd end"
    # Escape sequences are shown, never obeyed: every control character is a picture.
    assert display_text(b"\x1b[1;31mred\x1b[0m plain") == "␛[1;31mred␛[0m plain"
    assert display_text(b"\x1b]0;evil title\x07after") == "␛]0;evil title␇after"
    assert display_text(b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == (
        "␛]8;;http://x␛\\link␛]8;;␛\\")
    assert display_text(b"bell\x07 back\x08 nul\x00 del\x7f") == "bell␇ back␈ nul␀ del␡"
    assert display_text(b"progress 10%\rprogress 20%") == "progress 10%␍progress 20%"
    assert display_text(b"a\tb\tc") == "a       b       c"
    assert display_text(b"\x1b[2J\x1b[Hcleared?") == "␛[2J␛[Hcleared?"
    assert display_text("über \u009b31m \u202eevil".encode()) == "über <U+009B>31m <U+202E>evil"


def test_lines_of_any_length_are_found_with_a_sparse_index(tmp_path: Path) -> None:
    rng = random.Random(7)
    pieces: list[bytes] = []
    for _ in range(3000):
        size = rng.choice([0, 1, 5, 20, 80, 300, 1500])
        pieces.append(bytes(rng.choice(b"abcxyz \t\xc3\xa9") for _ in range(size)))
    data = b"\n".join(pieces) + b"\n"
    path = tmp_path / "out"
    path.write_bytes(data)
    index = LineIndex(str(path), stride=256, max_line=100)
    index.extend(chunk=333)  # chunk ends fall anywhere, in and between lines
    expected = reference_lines(data)
    assert index.line_count == len(expected)

    got = index.read_lines(0, len(expected))
    assert len(got) == len(expected)
    offset = 0
    for number, (line, want) in enumerate(zip(got, expected, strict=True)):
        assert line.raw + b"" == want[:len(line.raw)]
        assert len(line.raw) + line.cut == len(want)
        assert len(line.raw) == len(want) or 97 <= len(line.raw) <= 100
        assert index.line_offset(number) == offset
        offset += len(want) + 1
    # Read in windows, as a screen does, from a cold cache.
    index = LineIndex(str(path), stride=256, max_line=100)
    index.extend()
    for first in range(0, len(expected), 37):
        assert index.read_lines(first, 40) == got[first:first + 40]


def test_a_long_line_is_cut_between_characters_and_says_how_much_is_left_out(
        tmp_path: Path) -> None:
    path = tmp_path / "out"
    long = "é" * 3000  # 6000 bytes
    path.write_bytes(b"short\n" + long.encode() + b"\nafter\n" + b"x" * 50_000)
    index = LineIndex(str(path), stride=1024, max_line=101)
    index.extend()
    short, cut, after, tail = index.read_lines(0, 10)
    assert (short.text, after.text) == ("short", "after")
    assert cut.text == "é" * 50 and cut.cut == 6000 - 100  # not half a character
    assert tail.raw == b"x" * 101 and tail.cut == 50_000 - 101


def test_reads_while_another_thread_extends_see_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "out"
    data = b"".join(f"line {n}\n".encode() for n in range(20_000))
    path.write_bytes(data)
    index = LineIndex(str(path), stride=512)
    worker = threading.Thread(target=index.extend, kwargs={"chunk": 1000})
    worker.start()
    expected = [f"line {n}" for n in range(20_000)]
    reads = 0
    while worker.is_alive() or reads == 0:
        count = index.line_count
        shown = texts(index, max(0, count - 5), min(5, count))
        assert len(shown) == min(5, count)
        if shown:  # lines before the last are whole; the last may still be arriving
            assert shown[:-1] == expected[count - len(shown):count - 1]
            assert expected[count - 1].startswith(shown[-1])
        reads += 1
    worker.join()
    assert texts(index, 19_998) == ["line 19998", "line 19999"]


def test_a_100_mb_file_is_indexed_in_bounded_memory(big_file: Path) -> None:
    index = LineIndex(str(big_file))
    tracemalloc.start()
    try:
        index.extend()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert index.line_count == BIG_LINES
    assert big_file.stat().st_size == BIG_LINES * BIG_LINE
    assert index.memory_bytes < 64 * 1024  # a few thousand checkpoints, not a million
    assert peak < 4 * 1024 * 1024  # a chunk at a time, never the file
    middle = BIG_LINES // 2 + 3
    assert [line.raw + b"\n" for line in index.read_lines(middle, 3)] == [
        big_line(n) for n in range(middle, middle + 3)]
    assert index.read_lines(BIG_LINES - 1, 5)[0].text.startswith(f"{BIG_LINES - 1:09d} ")
    assert index.line_offset(middle) == middle * BIG_LINE
