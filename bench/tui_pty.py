"""The run screen in a real terminal: key-to-frame latency through a pseudo-terminal.

:mod:`bench.tui` times keys in Textual's headless driver, where nothing is written. Here
fleetrun's app (the same :class:`bench.tui.BenchApp` on the same simulated fleet: N
machines, each an 80-byte line every 0.5 s) runs in a child process on a pty of 160x45
with Textual's real Linux driver: it reads keys as escape sequences from the terminal and
writes its frames to it. This process plays the terminal: it writes ``down`` (``ESC [ B``;
``up`` at the last row), reads everything the app writes, and stops the clock when the
bytes read since the key, with their escape sequences removed, hold the tail pane's new
title (``last 4 KB · sim-0042``): the frame that shows the key's effect has been written
to the terminal. The next key goes 0-50 ms after that.

Reported: p50/p95/max key-to-frame over the keys sent while every machine streams (and
p50/p95 of those sent after the first :data:`SETTLED` seconds, once the run's start is
over), the bytes the app wrote per second (what a terminal, or ssh, has to carry), and from
the child where its time went: what its timed redraws took (``RunScreen._draw``) and, by
kind of callback, its event loop's CPU over the keys' window (:mod:`bench.loop_time`; the
terminal signals the child when the keys start and stop).
"""

from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from fcntl import ioctl
from pathlib import Path
from typing import Any

from bench.loop_time import LoopTime

FULL = (1_000, 40.0)
QUICK = (200, 20.0)
SIZE = (160, 45)
KEYS = 1_000
"""At most: keys go until a second before the machines stop streaming (some 400 in 40 s)."""
SETTLED = 5.0
"""Keys sent this long after the run screen first showed are also reported on their own:
by then every machine's files are open and each has streamed some ten lines."""
START_TIMEOUT = 120.0
KEY_TIMEOUT = 10.0
GAP = (0.0, 0.05)
GOAL_P95_MS = 100.0
LOOP_KINDS = 8
DOWN, UP, QUIT, CONFIRM = b"\x1b[B", b"\x1b[A", b"\x11", b"y"  # QUIT: ctrl+q

_ESCAPES = re.compile(rb"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[PX^_][^\x1b]*"
                      rb"\x1b\\|[@-Z\\-_])")
"""CSI, OSC, DCS/SOS/PM/APC strings, and two-byte escapes: everything but text."""


def plain(data: bytes) -> str:
    """What the bytes written to a terminal say, without their escape sequences."""
    return _ESCAPES.sub(b"", data).decode("utf-8", errors="replace")


# ----------------------------------------------------------------------------- the child


def child(n: int, seconds: float, root: Path) -> None:
    """Run the app on this process's terminal (the pty) until ctrl+q; then write what
    its redraws took to ``root/draws.json``."""
    import asyncio

    from bench.tui import BenchApp, StreamingBackend, fleet
    from core.journal_store import Journal
    from core.model import Command, CommandId
    from core.runner import RunSession

    asyncio.set_event_loop(asyncio.new_event_loop())
    command = Command(CommandId.SHELL, "stream", timeout=int(seconds) + 600)
    backend = StreamingBackend(seconds, seed=n)
    session = RunSession.plan([(m, command) for m in fleet(n)], lambda _m: backend,
                              fleet="bench", journal=Journal(root / "journal.sqlite"),
                              runs_root=root / "runs")
    app = BenchApp(session, backend)
    loop_time = LoopTime()
    # The terminal says when its keys start and end: the loop is timed over that window.
    signal.signal(signal.SIGUSR1, lambda *_: loop_time.start())
    signal.signal(signal.SIGUSR2, lambda *_: loop_time.stop())
    app.run()
    loop_time.stop()
    (root / "draws.json").write_text(json.dumps(app.draws))
    (root / "loop.json").write_text(json.dumps({
        "top": loop_time.top(LOOP_KINDS), "busy": loop_time.busy(),
        "longest": loop_time.longest}))


# ----------------------------------------------------------------------------- the terminal


@dataclass
class Terminal:
    """The parent's end of the pty: everything read from the app, with when it came."""

    fd: int
    data: bytearray
    reads: list[tuple[float, int]]
    """(when, length of :attr:`data` after that read)."""

    def pump(self, timeout: float) -> None:
        """Read what the app wrote within ``timeout`` seconds (returns at the first read)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:  # the child closed the terminal
            return
        self.data += chunk
        self.reads.append((time.perf_counter(), len(self.data)))

    def wait_for(self, text: str, since: int, timeout: float) -> float | None:
        """When the bytes read after offset ``since`` first held ``text`` (None: not in
        ``timeout`` seconds)."""
        deadline = time.perf_counter() + timeout
        checked = len(self.reads)
        while True:
            first = next((i for i, (_, end) in enumerate(self.reads) if end > since),
                         len(self.reads))
            for i in range(max(first, checked - 1), len(self.reads)):
                when, end = self.reads[i]
                if text in plain(bytes(self.data[since:end])):
                    return when
            checked = len(self.reads)
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self.pump(min(left, 0.05))


@dataclass
class Result:
    n: int
    seconds: float
    latencies: list[float]
    sent_at: list[float]
    timeouts: int
    bytes_per_s: float
    draws: list[float]
    load: str
    loop: dict[str, Any]
    """The child's loop over the keys' window: ``busy`` (its CPU share), ``top`` (kinds of
    callback and their shares), ``longest`` (seconds, kind)."""


def measure(n: int, seconds: float, root: Path) -> Result:
    master, slave = os.openpty()
    ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor",
           "FLEETRUN_DATA_DIR": str(root / "data"), "FLEETRUN_CONFIG_DIR": str(root / "config"),
           "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.tui_pty", "--child", str(n), str(seconds), str(root)],
        stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
        close_fds=True)
    os.close(slave)
    terminal = Terminal(master, bytearray(), [])
    names = [f"sim-{i:04d}" for i in range(n)]
    latencies: list[float] = []
    sent_at: list[float] = []
    """Seconds from the run screen's first frame to each key."""
    timeouts = 0
    rng = random.Random(7)
    try:
        started = terminal.wait_for(f"last 4 KB · {names[0]}", 0, START_TIMEOUT)
        if started is None:
            raise SystemExit("bench/tui_pty: the run screen never showed; the app wrote:\n"
                             + plain(bytes(terminal.data[-3000:])))
        process.send_signal(signal.SIGUSR1)
        row, t_first = 0, time.perf_counter()
        first_byte = len(terminal.data)
        while len(latencies) < KEYS and time.perf_counter() - started < seconds - 1.0:
            key, target = (DOWN, row + 1) if row + 1 < n else (UP, row - 1)
            since = len(terminal.data)
            t0 = time.perf_counter()
            sent_at.append(t0 - started)
            os.write(master, key)
            shown = terminal.wait_for(f"last 4 KB · {names[target]}", since, KEY_TIMEOUT)
            if shown is None:
                timeouts += 1
                latencies.append(KEY_TIMEOUT)
            else:
                latencies.append(shown - t0)
            row = target
            pause = time.perf_counter() + rng.uniform(*GAP)
            while (left := pause - time.perf_counter()) > 0:
                terminal.pump(left)
        bytes_per_s = (len(terminal.data) - first_byte) / max(time.perf_counter() - t_first,
                                                              1e-9)
        process.send_signal(signal.SIGUSR2)
        load = "load average {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
        quit_asked = len(terminal.data)
        os.write(master, QUIT)
        # The run is still going, so the app asks before it cancels the machines.
        if terminal.wait_for("still going", quit_asked, KEY_TIMEOUT) is not None:
            os.write(master, CONFIRM)
        deadline = time.perf_counter() + 90  # 1,000 machines take a while to stop
        while process.poll() is None and time.perf_counter() < deadline:
            terminal.pump(0.1)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        os.close(master)
    draws_file = root / "draws.json"
    draws = json.loads(draws_file.read_text()) if draws_file.exists() else []
    loop_file = root / "loop.json"
    loop = json.loads(loop_file.read_text()) if loop_file.exists() else {}
    return Result(n, seconds, latencies, sent_at, timeouts, bytes_per_s, draws, load, loop)


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else 0.0


def report(r: Result) -> list[str]:
    p95 = _ms(r.latencies, 0.95)
    settled = [took for took, at in zip(r.latencies, r.sent_at, strict=True) if at >= SETTLED]
    return [
        f"{'measure':<28} {'value':>14} {'goal':>10} {'result':>7}",
        f"{'key-to-frame p50':<28} {_ms(r.latencies, 0.5):>11.1f} ms",
        f"{'key-to-frame p95':<28} {p95:>11.1f} ms {f'<= {GOAL_P95_MS:g} ms':>10} "
        f"{'ok' if p95 <= GOAL_P95_MS and not r.timeouts else 'MISS':>7}",
        f"{'key-to-frame max':<28} {max(r.latencies, default=0) * 1e3:>11.1f} ms",
        f"{f'  after the first {SETTLED:g} s: p50':<28} {_ms(settled, 0.5):>11.1f} ms",
        f"{f'  after the first {SETTLED:g} s: p95':<28} {_ms(settled, 0.95):>11.1f} ms",
        f"{'keys (timed out)':<28} {f'{len(r.latencies)} ({r.timeouts})':>14}",
        f"{'written to the terminal':<28} {r.bytes_per_s / 1024:>11.1f} KB/s",
        f"where the time went: RunScreen._draw {len(r.draws)} calls, p50 "
        f"{_ms(r.draws, 0.5):.1f} ms, p95 {_ms(r.draws, 0.95):.1f} ms, "
        f"max {max(r.draws, default=0) * 1e3:.1f} ms",
        f"({r.load} at the end of the keys; 2 cores shared)",
        *_loop_lines(r.loop),
    ]


def _loop_lines(loop: dict[str, Any]) -> list[str]:
    if not loop:
        return ["the app's loop: not reported (the child did not end cleanly)"]
    longest, kind = loop["longest"]
    lines = [f"the app's loop while the keys were sent: busy {loop['busy']:.0%} of the time "
             f"(CPU); longest single callback {longest * 1e3:.1f} ms ({kind})"]
    lines += [f"  {share:6.1%}  {kind}" for kind, share in loop["top"]]
    return lines


def main(quick: bool = False) -> None:
    n, seconds = QUICK if quick else FULL
    print(f"bench/tui_pty: {n} simulated machines streaming for {seconds:g} s, fleetrun's "
          f"run screen in a real {SIZE[0]}x{SIZE[1]} pty (Textual's Linux driver); "
          f"keys until a second before the streaming ends, each timed until the frame naming the "
          f"new machine is written")
    with tempfile.TemporaryDirectory(prefix="fleetrun-bench-pty-") as tmp:
        result = measure(n, seconds, Path(tmp))
    print("\n".join(report(result)))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(int(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]))
    else:
        main(quick="--quick" in sys.argv)
