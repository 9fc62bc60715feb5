"""The TUI's run screen under a fleet streaming output: key-to-screen latency and peak RSS.

N simulated machines (a backend in this file, no processes) each print an 80-byte line
every 0.5 s (first line at a random phase), report their 4 KB tail every 5 s, and end
Succeeded once the streaming time is up. fleetrun's own app (:class:`tui.app.FleetrunApp`,
its fleet files skipped) shows them on the real :class:`tui.screens.run.RunScreen` over
the real fleet screen, as the app stacks them, on a real :class:`core.runner.RunSession`
with a journal, in Textual's headless driver at 160x45.

Measured while every machine streams:

- **key-to-screen latency**: a ``down`` key (``up`` at the last row) is handed to the app
  the way a terminal driver hands it one (``driver.send_message``), and the clock stops at
  the first frame the app composes and passes to its driver for output whose tail pane
  title names the machine now under the cursor. The frame is taken at ``App._display``,
  where a real terminal would be written to; the headless driver writes nothing, so the
  terminal's own write is not included. The next key goes 0-50 ms after that frame, so
  presses fall at every phase of the screen's 0.1 s redraw timer.
- **peak RSS** of this process (``ru_maxrss``) at the end: Python, Textual, the app and
  the run together.

Goal: p95 <= 100 ms and peak RSS <= 300 MB. Below the table, where the time went: how
long each of the screen's timed redraws (``RunScreen._draw``) took, and the frames
composed per second.

Every machine must end Succeeded with exactly the simulated output in its stdout file;
a run that does not is reported WRONG and the benchmark exits non-zero.
"""

from __future__ import annotations

import asyncio
import gc
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import RenderableType
from textual import events, on
from textual.screen import Screen

from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.fleet.routing import Backends
from core.journal_store import Journal
from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    MachineKind,
    MachineRun,
    OsType,
    RunState,
    Stream,
    utc_now,
)
from core.runner import RunSession
from tui.app import FleetrunApp
from tui.screens.fleet import FleetScreen
from tui.screens.run import RunScreen
from tui.widgets.run.output_panes import TailPane
from tui.widgets.run.run_table import RunTable

FULL = (1_000, 30.0)
QUICK = (200, 10.0)
SIZE = (160, 45)
LINE_EVERY = 0.5
LINE_BYTES = 80
TAIL_EVERY = 10
"""Lines between tail reports (one every 5 s)."""
TAIL_BYTES = 4096
MIN_SAMPLES = 100
GAP = (0.0, 0.05)
"""Seconds between a frame that showed a key's effect and the next key."""
KEY_TIMEOUT = 10.0
"""A key whose effect is not on screen by then is counted as this many seconds."""
END_TIMEOUT = 60.0
"""Seconds after the streaming time for the run to end."""
GOAL_P95_MS = 100.0
GOAL_RSS_MB = 300.0


def line(name: str, number: int) -> bytes:
    """Line ``number`` of machine ``name``: exactly :data:`LINE_BYTES` bytes with its newline."""
    return f"{name} line {number:05d} ".ljust(LINE_BYTES - 1, ".").encode() + b"\n"


def lines_per_machine(seconds: float) -> int:
    return int(seconds / LINE_EVERY)


def expected_stdout(name: str, seconds: float) -> bytes:
    return b"".join(line(name, k) for k in range(lines_per_machine(seconds)))


@dataclass
class StreamingBackend:
    """Every machine prints a line every :data:`LINE_EVERY` s for ``seconds``, then succeeds.

    Lines are due at fixed times from the machine's start, so a late event loop delays
    them but never drops one.
    """

    seconds: float
    seed: int = 0
    _random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: m.health for m in machines}

    async def run(self, machine: Machine, command: Command, *, run_id: str
                  ) -> AsyncIterator[MachineEvent]:
        loop = asyncio.get_running_loop()
        started = utc_now()
        start = loop.time() + self._random.uniform(0.0, LINE_EVERY)
        yield StateChanged(machine.id, RunState.RUNNING)
        sent = bytearray()
        for k in range(lines_per_machine(self.seconds)):
            await asyncio.sleep(max(0.0, start + k * LINE_EVERY - loop.time()))
            data = line(machine.name, k)
            yield OutputAppended(machine.id, Stream.STDOUT, len(sent), data)
            sent += data
            if (k + 1) % TAIL_EVERY == 0:
                yield TailUpdated(machine.id, Stream.STDOUT, bytes(sent[-TAIL_BYTES:]))
        yield TailUpdated(machine.id, Stream.STDOUT, bytes(sent[-TAIL_BYTES:]))
        yield Finished(machine.id, RunState.SUCCEEDED, 0, started, utc_now())

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


def fleet(n: int) -> list[Machine]:
    return [Machine(id=f"sim-{i:04d}", name=f"sim-{i:04d}", kind=MachineKind.LOCAL,
                    os=OsType.LINUX, health=Health(HealthStatus.READY)) for i in range(n)]


# ----------------------------------------------------------------------------- the app


class BenchApp(FleetrunApp):
    """fleetrun's app opened straight on one run's screen, noting every frame it composes."""

    def __init__(self, session: RunSession, backend: StreamingBackend) -> None:
        super().__init__()
        self.session = session
        self.backend = backend
        self.run_screen = RunScreen(session, "bench")
        self.frames: list[tuple[float, str]] = []
        """(when, tail pane title) of every frame handed to the driver."""
        self.draws: list[float] = []
        """Seconds taken by each of the run screen's timed redraws."""
        self.run_screen._draw = self._timed(self.run_screen._draw)  # type: ignore[method-assign]

    def _timed(self, draw: Callable[[], None]) -> Callable[[], None]:
        def timed() -> None:
            t0 = time.perf_counter()
            draw()
            self.draws.append(time.perf_counter() - t0)
        return timed

    @on(events.Mount)
    async def _open_run(self, event: events.Mount) -> None:
        # Textual would call FleetrunApp.on_mount too, which opens a fleet from files: here
        # the screens are stacked as the app stacks them once the user has started a run
        # (what lies under the run screen decides what Textual repaints with it).
        event.prevent_default()
        self.collect_garbage_between_keys()  # as FleetrunApp.on_mount does
        machines = [mr.machine for mr in self.session.run.machines.values()]
        backends = Backends({MachineKind.LOCAL: self.backend})
        self._stop_loading()
        await self.push_screen(FleetScreen(machines, backends, "bench"))
        await self.push_screen(self.run_screen)

    def _display(self, screen: Screen[object], renderable: RenderableType | None) -> None:
        if renderable is not None and screen is self.run_screen:
            title = screen.query_one(TailPane).border_title
            self.frames.append((time.perf_counter(), str(title or "")))
        super()._display(screen, renderable)


# ----------------------------------------------------------------------------- the run


@dataclass
class Result:
    n: int
    seconds: float
    latencies: list[float]
    timeouts: int
    rss_mb: float
    rss_before_mb: float
    draws: list[float]
    frames_per_s: float
    wall: float
    wrong: list[str]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def press_and_wait(app: BenchApp, key: str, expected: str) -> float | None:
    """Seconds from handing ``key`` to the app to the first frame whose tail title is
    ``expected`` (None if it never came within :data:`KEY_TIMEOUT`)."""
    driver = app._driver
    assert driver is not None
    seen = len(app.frames)
    event = events.Key(key, None)
    event.set_sender(app)
    t0 = time.perf_counter()
    driver.send_message(event)
    while time.perf_counter() - t0 < KEY_TIMEOUT:
        await asyncio.sleep(0.001)
        for when, title in app.frames[seen:]:
            if title == expected:
                return when - t0
        seen = len(app.frames)
    return None


async def measure(n: int, seconds: float, root: Path) -> Result:
    gc.collect()
    rss_before = rss_mb()
    command = Command(CommandId.SHELL, "stream", timeout=int(seconds) + 600)
    machines = fleet(n)
    backend = StreamingBackend(seconds, seed=n)
    session = RunSession.plan([(m, command) for m in machines], lambda _m: backend,
                              fleet="bench", journal=Journal(root / "journal.sqlite"),
                              runs_root=root / "runs")
    app = BenchApp(session, backend)
    run = session.run
    order = list(run.machines)
    names = [run.machines[m].machine.name for m in order]
    rng = random.Random(7)
    latencies: list[float] = []
    timeouts = 0
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.run_screen.query_one("#machines", RunTable)
        t0 = time.perf_counter()
        # Until the first machine is due to end: every machine is streaming meanwhile.
        while time.perf_counter() - t0 < seconds - LINE_EVERY and not run.finished:
            row = table.cursor_row
            key, target = ("down", row + 1) if row + 1 < len(order) else ("up", row - 1)
            took = await press_and_wait(app, key, f"last 4 KB · {names[target]}")
            if took is None:
                timeouts += 1
                took = KEY_TIMEOUT
            latencies.append(took)
            await asyncio.sleep(rng.uniform(*GAP))
        frames_in_window = sum(1 for when, _ in app.frames if when >= t0)
        frames_per_s = frames_in_window / max(time.perf_counter() - t0, 1e-9)
        deadline = time.perf_counter() + END_TIMEOUT
        while not run.finished and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - t0
        finished = run.finished
        await pilot.pause()
    wrong = check(run.machines.values(), seconds)
    if not finished:
        wrong.insert(0, f"the run had not ended {END_TIMEOUT:g} s after its streaming time")
    return Result(n, seconds, latencies, timeouts, rss_mb(), rss_before, app.draws,
                  frames_per_s, wall, wrong)


def check(machine_runs: Iterable[MachineRun], seconds: float) -> list[str]:
    """What is wrong with the results: a state other than Succeeded, or other output."""
    wrong: list[str] = []
    for mr in machine_runs:
        name = mr.machine.name
        if mr.state is not RunState.SUCCEEDED:
            wrong.append(f"{name}: {mr.state} ({mr.error or 'no error given'})")
            continue
        expected = expected_stdout(name, seconds)
        path = Path(mr.stdout_file) if mr.stdout_file else None
        stdout = path.read_bytes() if path is not None and path.exists() else b""
        if mr.stdout_bytes != len(expected) or stdout != expected:
            same = "same" if stdout == expected else "other"
            wrong.append(f"{name}: {mr.stdout_bytes} bytes counted, {len(stdout)} in the "
                         f"file ({same} content), expected {len(expected)}")
    return wrong


# ----------------------------------------------------------------------------- report


def _ms(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3


def _table(r: Result) -> list[str]:
    p50, p95 = _ms(r.latencies, 0.50), _ms(r.latencies, 0.95)
    worst = max(r.latencies, default=float("nan")) * 1e3
    lat_ok = p95 <= GOAL_P95_MS and len(r.latencies) >= MIN_SAMPLES
    rows = [
        f"{'measure':<28} {'value':>14} {'goal':>10} {'result':>7}",
        f"{'key-to-screen p50':<28} {p50:>11.1f} ms {'':>10} {'':>7}",
        f"{'key-to-screen p95':<28} {p95:>11.1f} ms {f'<= {GOAL_P95_MS:g} ms':>10} "
        f"{'ok' if lat_ok else 'MISS':>7}",
        f"{'key-to-screen max':<28} {worst:>11.1f} ms {'':>10} {'':>7}",
        f"{'key presses (timed out)':<28} {f'{len(r.latencies)} ({r.timeouts})':>14} "
        f"{f'>= {MIN_SAMPLES}':>10} {'ok' if len(r.latencies) >= MIN_SAMPLES else 'MISS':>7}",
        f"{'peak RSS':<28} {r.rss_mb:>11.1f} MB {f'<= {GOAL_RSS_MB:g} MB':>10} "
        f"{'ok' if r.rss_mb <= GOAL_RSS_MB else 'MISS':>7}",
        f"{'results':<28} {'all Succeeded' if not r.wrong else f'{len(r.wrong)} wrong':>14} "
        f"{'':>10} {'ok' if not r.wrong else 'WRONG':>7}",
    ]
    return rows


def _diagnosis(r: Result) -> list[str]:
    draws = r.draws or [0.0]
    return [
        f"RunScreen._draw (every 0.1 s): {len(r.draws)} calls, p50 {_ms(draws, 0.5):.1f} ms, "
        f"p95 {_ms(draws, 0.95):.1f} ms, max {max(draws) * 1e3:.1f} ms",
        f"frames composed while streaming: {r.frames_per_s:.1f}/s; RSS before the app "
        f"{r.rss_before_mb:.1f} MB; run ended {r.wall:.1f} s after the first key "
        f"(streaming {r.seconds:g} s)",
    ]


def main(quick: bool = False) -> None:
    n, seconds = QUICK if quick else FULL
    print(f"bench/tui: {n} simulated machines, each an {LINE_BYTES}-byte line every "
          f"{LINE_EVERY:g} s for {seconds:g} s ({n / LINE_EVERY:,.0f} lines/s), on fleetrun's "
          f"RunScreen in a headless {SIZE[0]}x{SIZE[1]} app; a key = down/up, shown when a "
          "composed frame's tail title names the new machine")
    saved = {k: os.environ.get(k) for k in ("FLEETRUN_DATA_DIR", "FLEETRUN_CONFIG_DIR")}
    with tempfile.TemporaryDirectory(prefix="fleetrun-bench-tui-") as tmp:
        root = Path(tmp)
        os.environ["FLEETRUN_DATA_DIR"] = str(root / "data")
        os.environ["FLEETRUN_CONFIG_DIR"] = str(root / "config")
        try:
            result = asyncio.run(measure(n, seconds, root))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    print("\n".join(_table(result)))
    print("where the time went:")
    print("\n".join(_diagnosis(result)))
    if result.wrong:
        for problem in result.wrong[:20]:
            print(f"WRONG: {problem}", file=sys.stderr)
        raise SystemExit(f"bench/tui: WRONG RESULTS ({len(result.wrong)} problems); the "
                         "timings above do not count")


if __name__ == "__main__":
    main()
