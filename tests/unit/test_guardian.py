"""The guardian and the cookie kill, below the CLI (tests/cli/test_process_cleanup.py).

A stand-in for fleetrun (a small Python process) starts a script with a run cookie, has
the guardian watch it and a folder, and is then SIGKILLed, as fleetrun might be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.proctree import COOKIE_VARIABLE, Tracked, kill_runs, new_cookie

STAND_IN = """
import os, subprocess, sys
from core.guardian import guardian
from core.proctree import Tracked, new_cookie
cookie = new_cookie()
script = subprocess.Popen(["bash", "-c", sys.argv[1], sys.argv[3]], start_new_session=True,
                          env={"PATH": "/usr/bin:/bin", "FLEETRUN_RUN": cookie})
guardian().watch(Tracked(cookie, os.geteuid(), script.pid))
guardian().remove_at_exit(sys.argv[2])
print(guardian().pid, script.pid, flush=True)
sys.stdin.read()
"""
SCRIPT = 'setsid sleep 300 & echo "$!" >> "$0"; sleep 300 & echo "$!" >> "$0"; wait'


def wait_until(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stat_fields(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@pytest.fixture
def pids_to_kill() -> Iterator[list[int]]:
    """PIDs a failed test would otherwise leave running."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_dead_fleetruns_guardian_kills_its_runs_and_removes_its_folders(
    tmp_path: Path, pids_to_kill: list[int]
) -> None:
    folder, pidfile = tmp_path / "scratch", tmp_path / "pids"
    (folder / "inner").mkdir(parents=True)
    secret = "guardian-canary-secret"
    stand_in = subprocess.Popen(
        [sys.executable, "-c", STAND_IN, SCRIPT, str(folder), str(pidfile)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "FLEETRUN_SECRET_TOKEN": secret, "PYTHONPATH": str(Path.cwd())},
    )
    pids_to_kill.append(stand_in.pid)
    assert stand_in.stdout is not None
    guardian, script = (int(pid) for pid in stand_in.stdout.readline().split())
    pids_to_kill += [guardian, script]
    # Nothing of fleetrun's: no environment, no terminal or session, no stdout or stderr.
    assert Path(f"/proc/{guardian}/environ").read_bytes() == b""
    assert stat_fields(guardian)[3] != stat_fields(stand_in.pid)[3]  # its own session
    assert stat_fields(guardian)[4] == "0"  # no controlling terminal
    assert [os.readlink(f"/proc/{guardian}/fd/{fd}") for fd in (1, 2)] == ["/dev/null"] * 2
    wait_until(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2, "pids")
    pids = [int(p) for p in pidfile.read_text().split()]
    pids_to_kill += pids
    assert all(alive(p) for p in pids)
    stand_in.kill()
    stand_in.wait()
    wait_until(lambda: not any(alive(p) for p in pids), "the script's processes are gone")
    wait_until(lambda: not folder.exists(), "the folder is removed")
    wait_until(lambda: not alive(guardian), "the guardian has exited")


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another user needs root")
def test_the_cookie_kill_spares_other_runs_and_other_users(pids_to_kill: list[int]) -> None:
    cookie = new_cookie()

    def sleeper(env_cookie: str, user: str | None = None) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(["sleep", "300"], env={COOKIE_VARIABLE: env_cookie},
                                   user=user, start_new_session=True)
        pids_to_kill.append(process.pid)
        return process

    ours, other_run, other_user = sleeper(cookie), sleeper(new_cookie()), sleeper(cookie, "nobody")
    kill_runs([Tracked(cookie, os.geteuid())])
    assert ours.wait(timeout=10) == -signal.SIGKILL
    assert other_run.poll() is None and other_user.poll() is None
