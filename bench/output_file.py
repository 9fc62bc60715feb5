"""Big outputs in the full-output pane: indexing, searching and reading a 100 MB file.

Two files of about 100 MB are written to a temporary directory (then read from the page
cache, as a run's fresh output is): ``seq``-like short lines (8 bytes, ~14 M lines) and
100-byte lines. For each we report:

- **index**: :meth:`core.line_index.LineIndex.extend` over the whole file, its wall time,
  the index's own size and the peak of Python allocations while it ran (tracemalloc);
- **search**: a plain text that is not there (the whole file scanned), a plain text on the
  last line, and a regular expression that is not there;
- **screens**: 1,000 screens of 40 lines read cold at spread-out places;
- **in the app**: fleetrun's full-output pane (:class:`tui.widgets.run.output_panes.
  FullOutput`) in Textual's headless driver, from mount until the file's last line is the
  pane's last row (the index built in its thread while the screen goes on drawing).

Goals: the index under 1 MB and the peak under 8 MB (memory must not follow the file);
the in-app time under 2 s for 100 MB.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from textual.app import App, ComposeResult

from core.file_search import Matcher, search
from core.line_index import LineIndex
from tui.widgets.run.file_view import FileView
from tui.widgets.run.output_panes import FullOutput

T = TypeVar("T")

TARGET = 100 * 1024 * 1024
GOAL_INDEX_BYTES = 1024 * 1024
GOAL_PEAK_BYTES = 8 * 1024 * 1024
GOAL_APP_S = 2.0


def _write_seq(path: Path, size: int) -> str:
    """Numbers one per line up to ``size`` bytes; returns the last line."""
    with path.open("wb") as out:
        number, written = 1, 0
        while written < size:
            block = "".join(f"{n}\n" for n in range(number, number + 100_000)).encode()
            out.write(block)
            written += len(block)
            number += 100_000
    return str(number - 1)


def _write_wide(path: Path, size: int) -> str:
    lines = size // 100
    with path.open("wb") as out:
        for first in range(0, lines, 10_000):
            out.write(b"".join(f"{n:09d} ".ljust(99, ".").encode() + b"\n"
                               for n in range(first, min(first + 10_000, lines))))
    return f"{lines - 1:09d} ".ljust(99, ".")


def _timed(action: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


class _Pane(App[None]):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        yield FullOutput()

    def on_mount(self) -> None:
        self.set_interval(0.1, self.poll)
        self.poll()

    def poll(self) -> None:
        self.query_one(FullOutput).show_files("bench", str(self.path), "")


async def _in_app(path: Path, last: str) -> float:
    app = _Pane(path)
    start = time.perf_counter()
    async with app.run_test(size=(160, 45)) as pilot:
        view = app.query_one(FileView)
        height = view.scrollable_content_region.height
        while not (view.index is not None and view.index.line_count > height
                   and view.render_line(height - 1).text.rstrip() == last):
            if time.perf_counter() - start > 60:
                return float("inf")
            await pilot.pause(0.01)
        return time.perf_counter() - start


def _measure(name: str, path: Path, last: str) -> list[str]:
    size = path.stat().st_size
    index = LineIndex(str(path))
    tracemalloc.start()
    took, _ = _timed(index.extend)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    small = index.memory_bytes < GOAL_INDEX_BYTES and peak < GOAL_PEAK_BYTES
    rows = [f"{name}: {size / 1e6:.0f} MB, {index.line_count:,} lines",
            f"  index            {took * 1e3:8.0f} ms   index {index.memory_bytes / 1024:.0f} KB "
            f"(goal < {GOAL_INDEX_BYTES // 1024} KB), peak {peak / 1e6:.1f} MB "
            f"(goal < {GOAL_PEAK_BYTES / 1e6:.0f} MB) {'ok' if small else 'MISS'}"]
    for label, matcher in (("plain, no match", Matcher("not in the file")),
                           ("plain, last line", Matcher(last)),
                           ("regex, no match", Matcher(r"x\d{3}y", regex=True))):
        took, found = _timed(partial(search, index, matcher, 0, wrap=False))
        rows.append(f"  search {label:<17} {took * 1e3:6.0f} ms   "
                    f"{'line ' + format(found.line + 1, ',') if found else 'none'}")
    step = max(1, index.line_count // 1000)
    took, _ = _timed(lambda: [index.read_lines(n, 40) for n in range(0, index.line_count, step)])
    rows.append(f"  1,000 cold screens {took * 1e3:6.0f} ms")
    app_s = asyncio.run(_in_app(path, last))
    rows.append(f"  in the app: end shown after {app_s:.2f} s (goal < {GOAL_APP_S:g} s) "
                f"{'ok' if app_s < GOAL_APP_S else 'MISS'}")
    return rows


def main(quick: bool = False) -> None:
    size = TARGET // 10 if quick else TARGET
    print(f"bench/output_file: {size / 1e6:.0f} MB output files, indexed, searched and shown")
    with tempfile.TemporaryDirectory(prefix="fleetrun-bench-output-") as tmp:
        for name, write in (("seq lines", _write_seq), ("100-byte lines", _write_wide)):
            path = Path(tmp) / f"{name.split()[0]}.stdout"
            last = write(path, size)
            print("\n".join(_measure(name, path, last)))


if __name__ == "__main__":
    main()
