"""The output of the machine under the cursor: its 4 KB tail beside its full output.

The full output is read from the machine's stdout file, lazily: the last
:data:`WINDOW_BYTES` when a machine is chosen, then only what was appended since (the file
only grows), so a 100 MB output costs no more than a small one.
"""

from __future__ import annotations

import codecs
import os

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Log

from core.model import MachineRun, Stream
from core.output import OutputStore, decode_tail

WINDOW_BYTES = 64 * 1024
"""The most read from a file at once: on opening, and per refresh when it grows fast."""

MAX_LINES = 20_000
"""Lines the full pane keeps while following; older ones scroll away."""


class TailPane(Log):
    """The machine's last 4 KB of stdout, then of stderr (as the instance view reports)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._shown: tuple[bytes, bytes] | None = None

    def show(self, stdout: bytes, stderr: bytes) -> None:
        if self._shown == (stdout, stderr):
            return
        self._shown = (stdout, stderr)
        self.clear()
        self.write(decode_tail(stdout))
        if stderr:
            if stdout and not stdout.endswith(b"\n"):
                self.write("\n")
            self.write("── stderr ──\n" + decode_tail(stderr))


class FullOutput(Log):
    """A machine's whole stdout, followed as its file grows."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(max_lines=MAX_LINES, **kwargs)  # type: ignore[arg-type]
        self.path = ""
        self.read_offset = 0
        """Bytes of the file read so far (or skipped over)."""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def follow(self, path: str) -> None:
        """Show the file at ``path`` (empty if it does not exist yet) and follow it."""
        if path == self.path:
            return
        self.path = path
        self.read_offset = 0
        self._decoder.reset()
        self.clear()
        self.poll()

    def poll(self) -> int:
        """Append what the file gained since the last read; returns the bytes read."""
        if not self.path:
            return 0
        try:
            with open(self.path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size <= self.read_offset:
                    return 0
                start = max(self.read_offset, size - WINDOW_BYTES)
                handle.seek(start)
                data = handle.read(size - start)
        except FileNotFoundError:
            return 0
        if start > self.read_offset:
            # Too much to show it all: jump to the end, from a line start, and say so.
            cut = data.find(b"\n")
            if 0 <= cut < len(data) - 1:
                data = data[cut + 1:]
            skipped = size - len(data) - self.read_offset
            self._decoder.reset()
            if self.line_count and self.lines[-1]:
                self.write("\n")
            self.write(f"… {skipped:,} bytes not shown …\n")
        self.read_offset = size
        self.write(self._decoder.decode(data))
        return len(data)


class OutputPanes(Horizontal):
    """Tail and full output of one machine, side by side."""

    DEFAULT_CSS = """
    OutputPanes { height: 1fr; }
    OutputPanes > Log { width: 1fr; border: round $primary-darken-2; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.machine_id = ""

    def compose(self) -> ComposeResult:
        yield TailPane(id="tail")
        yield FullOutput(id="full")

    def show(self, mr: MachineRun | None, output: OutputStore) -> None:
        """Show (or keep up to date) the output of ``mr``; None clears the panes."""
        tail, full = self.query_one(TailPane), self.query_one(FullOutput)
        if mr is None:
            self.machine_id = ""
            tail.show(b"", b"")
            full.follow("")
            return
        self.machine_id = mr.machine_id
        tail.show(output.tail(mr.machine_id, Stream.STDOUT),
                  output.tail(mr.machine_id, Stream.STDERR))
        tail.border_title = f"tail · {mr.machine.name}"
        full.follow(mr.stdout_file)
        full.poll()
        full.border_title = f"stdout · {mr.machine.name} · {full.read_offset:,} bytes"
