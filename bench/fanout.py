"""The fan-out engine's own cost: N machines through it with a backend that does nothing.

Each machine 'runs' for a fixed, seeded duration between 0.2 and 1.0 s (an asyncio sleep)
and prints one line, so the ideal wall time is the slowest machine's own duration. We
report wall time over that ideal and the engine's CPU per machine, with and without the
journal (SQLite) and output files, i.e. what a real run pays. The kernel's share of the
CPU is shown apart: on a disk it is mostly creating one output file per machine, which
costs what the file system makes it cost. On ext4 without a journal that is 0.02 ms a
file, or up to 1 ms while files deleted nearby in the last half minute are skipped over
(the kernel's recently_deleted check); so the files of one measurement are deleted only
at the end, not before the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import NamedTuple

from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.fanout import FanOut
from core.journal_store import Journal
from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    MachineKind,
    OsType,
    RunState,
    Stream,
    utc_now,
)
from core.output import OutputStore
from core.runner import RunSession

SIZES = (100, 1_000, 10_000)


class NoopBackend:
    """Sleeps for the machine's duration and reports one line of output."""

    def __init__(self, durations: dict[MachineId, float]) -> None:
        self.durations = durations

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: Health(HealthStatus.READY) for m in machines}

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        started = utc_now()
        yield StateChanged(machine.id, RunState.RUNNING)
        yield OutputAppended(machine.id, Stream.STDOUT, 0, b"hi\n")
        await asyncio.sleep(self.durations[machine.id])
        yield TailUpdated(machine.id, Stream.STDOUT, b"hi\n")
        yield Finished(machine.id, RunState.SUCCEEDED, 0, started, utc_now())

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


def _fleet(n: int) -> tuple[list[Machine], dict[MachineId, float]]:
    rng = random.Random(n)
    machines = [
        Machine(
            f"m{i:05d}",
            f"m{i:05d}",
            MachineKind.LOCAL,
            OsType.LINUX,
            health=Health(HealthStatus.READY),
        )
        for i in range(n)
    ]
    return machines, {m.id: rng.uniform(0.2, 1.0) for m in machines}


class Sample(NamedTuple):
    wall: float
    ideal: float
    cpu: float
    """User and kernel CPU of the whole process (the journal's thread included)."""
    kernel: float


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


async def _measure(n: int, *, journal: bool, root: Path) -> Sample:
    machines, durations = _fleet(n)
    backend = NoopBackend(durations)
    command = Command(CommandId.SHELL, "echo hi", timeout=60)
    pairs = [(m, command) for m in machines]
    gc.collect()
    (cpu0, kernel0), wall0 = _cpu(), time.perf_counter()
    if journal:
        session = RunSession.plan(
            pairs, lambda _m: backend, journal=Journal(root / f"j{n}.sqlite3"), runs_root=root
        )
        run = await session.execute()
    else:
        from core.fanout import plan_run

        run = plan_run(pairs)
        run = await FanOut(run, lambda _m: backend, OutputStore(root / run.run_id)).execute()
    wall = time.perf_counter() - wall0
    cpu, kernel = _cpu()
    assert run.summary() == {"Succeeded": n}, run.summary()
    return Sample(wall, max(durations.values()), cpu - cpu0, kernel - kernel0)


def _roots() -> list[tuple[str, str | None]]:
    # The engine alone is measured with its files in memory (tmpfs), so the disk of the
    # machine running the benchmark does not hide the engine's own cost; the full run
    # (output files and the SQLite journal) is measured on the data disk too.
    memory = "/dev/shm" if Path("/dev/shm").is_dir() else None
    return [
        ("engine (tmpfs)", memory),
        ("engine+journal (tmpfs)", memory),
        ("engine+journal (disk)", None),
    ]


def main(quick: bool = False) -> None:
    sizes = SIZES[:2] if quick else SIZES
    print("bench/fanout: N machines, no-op backend (0.2-1.0 s each), unlimited concurrency")
    print(
        f"{'N':>7} {'mode':<24} {'wall s':>8} {'ideal s':>8} {'wall/ideal':>10} "
        f"{'CPU s':>7} {'kernel s':>8} {'CPU/machine':>12}"
    )
    with contextlib.ExitStack() as kept:
        for n in sizes:
            for mode, where in _roots():
                tmp = kept.enter_context(tempfile.TemporaryDirectory(dir=where))
                got = asyncio.run(_measure(n, journal="journal" in mode, root=Path(tmp)))
                print(
                    f"{n:>7} {mode:<24} {got.wall:>8.2f} {got.ideal:>8.2f} "
                    f"{got.wall / got.ideal:>10.2f} {got.cpu:>7.2f} {got.kernel:>8.2f} "
                    f"{got.cpu / n * 1e6:>9.0f} µs", flush=True
                )


if __name__ == "__main__":
    main()
