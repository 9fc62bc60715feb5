"""fleetrun killed with SIGKILL: its scripts do not outlive it, its temporary folders go.

Each test starts the real ``fleetrun run`` in a subprocess with a private TMPDIR, waits
until its script has written the PIDs of its sleeps (one left the process group with
``setsid``), SIGKILLs fleetrun and looks at what is left on this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import FLEETRUN, Home

DEADLINE = 30.0
SCRIPT = (
    'setsid sleep 1000 & echo "$!" >> "$PIDFILE"\n'
    'sleep 1000 & echo "$!" >> "$PIDFILE"\n'
    'echo "$$" >> "$PIDFILE"\n'
    "wait\n"
)
WHERE = {"local": ["--fleet", "local"], "sandbox": ["--target", "name:web-01"]}
"""``local``, and ``web-01`` on the default fleet: the built-in sandbox, which runs its
Linux machines' scripts as processes here."""


def wait_until(condition: Callable[[], bool], what: str, within: float = DEADLINE) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def leftovers(tmp: Path) -> list[Path]:
    """Everything under ``tmp`` but the empty place fleetrun keeps its folders in."""
    keep = tmp / f"fleetrun-{os.geteuid()}"
    found = []
    for folder, dirs, files in os.walk(tmp):  # what goes meanwhile is skipped, not an error
        found += [Path(folder, name) for name in dirs + files]
    return [p for p in found if p != keep]


def children(pid: int) -> list[tuple[int, bytes]]:
    """The live child processes of ``pid`` with their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if ppid == pid:
            found.append((int(entry.name), cmdline))
    return found


class Started:
    """One ``fleetrun run`` whose script is up, and the PIDs it wrote."""

    def __init__(self, home: Home, tmp: Path, where: str) -> None:
        self.pidfile = tmp.parent / f"pids-{where}"
        self.process = subprocess.Popen(
            [FLEETRUN, "run", *WHERE[where], "--shell", SCRIPT, "-p", f"PIDFILE={self.pidfile}",
             "--timeout", "600", "-o", "jsonl"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=home.env(TMPDIR=str(tmp)),
        )
        wait_until(self._written, "the script wrote its three PIDs", within=60)
        self.pids = [int(line) for line in self.pidfile.read_text().split()]

    def _written(self) -> bool:
        assert self.process.poll() is None, f"fleetrun ended: {self.process.returncode}"
        return self.pidfile.exists() and len(self.pidfile.read_text().split()) == 3

    def sigkill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def clean_up(self) -> None:
        """Whatever a failed test left: no sleep 1000 outlives the test."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in self.pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    made = tmp_path / "tmp"
    made.mkdir()
    return made


@pytest.fixture
def start(home: Home, tmp: Path) -> Iterator[Callable[[str], Started]]:
    started: list[Started] = []

    def run(where: str) -> Started:
        started.append(Started(home, tmp, where))
        return started[-1]

    yield run
    for one in started:
        one.clean_up()


@pytest.mark.parametrize("where", ["local", "sandbox"])
def test_scripts_and_folders_do_not_outlive_a_sigkilled_fleetrun(
    start: Callable[[str], Started], tmp: Path, where: str
) -> None:
    run = start(where)
    assert all(alive(pid) for pid in run.pids)
    assert leftovers(tmp), "the run has a working folder while it runs"
    run.sigkill()
    wait_until(lambda: not any(alive(pid) for pid in run.pids),
               f"the script's processes {run.pids} are gone")
    wait_until(lambda: not leftovers(tmp), "the run's folders are removed")


def test_the_next_start_removes_what_a_dead_fleetrun_left(
    start: Callable[[str], Started], tmp: Path, home: Home
) -> None:
    run = start("local")
    # What kills fleetrun may kill its guardian too (an OOM kill, `kill -9` on both): then
    # nobody cleans up at once, and the next fleetrun must.
    for pid, cmdline in children(run.process.pid):
        if b"guardian" in cmdline:
            os.kill(pid, signal.SIGKILL)
    run.sigkill()
    left = leftovers(tmp)
    assert left
    for pid in run.pids:
        os.kill(pid, signal.SIGKILL)
    again = subprocess.run([FLEETRUN, "run", "--fleet", "local", "--shell", "true"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           env=home.env(TMPDIR=str(tmp)), timeout=60)
    assert again.returncode == 0, again.stderr
    wait_until(lambda: not [p for p in left if p.exists()],
               f"the next start removed what the dead one left: {left}")
