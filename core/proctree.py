"""Killing everything a run started, on this machine: its process group and its cookie.

A script runs in a process group of its own, but a process that calls ``setsid`` (or is
double-forked and then does) leaves it, and ``killpg`` misses it. So every script also
starts with a run cookie, ``FLEETRUN_RUN=<cookie>``, in its environment, and everything it
starts inherits it: like Jenkins' ProcessTreeKiller, a kill looks through ``/proc`` for
processes of the script's user whose ``/proc/PID/environ`` (the environment they were
started with) holds it, and SIGKILLs them, again until a pass finds none. A process that
deliberately starts with a cleared environment (``env -i``, ``setsid env -i ...``) carries no
cookie and escapes; nothing short of a cgroup would catch it.

Only the lighter standard library (no ``secrets``, no ``dataclasses``): the guardian
process (:mod:`core.guardian_process`) imports this, and should stay small.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from typing import NamedTuple

COOKIE_VARIABLE = "FLEETRUN_RUN"
KILL_WITHIN = 5.0
"""How long a kill goes on looking for processes that a dying one forked meanwhile."""
_INSTANCE = os.urandom(6).hex()
"""This fleetrun process's part of every cookie it hands out."""


class Tracked(NamedTuple):
    """One run's processes: those carrying ``cookie`` owned by ``uid``, and group ``pgid``."""

    cookie: str
    uid: int
    pgid: int = 0
    """0 while the script is being started."""


def new_cookie() -> str:
    """A cookie no other run (of this or any other fleetrun process) carries."""
    return f"{_INSTANCE}-{os.urandom(8).hex()}"


def kill_runs(runs: Iterable[Tracked], *, within: float = KILL_WITHIN) -> None:
    """SIGKILL every process of ``runs``: each group, then every carrier of a cookie.

    Returns once a pass over ``/proc`` finds no carrier left, or after ``within`` seconds.
    """
    runs = list(runs)
    if not runs:
        return
    for run in runs:
        if run.pgid > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.pgid, signal.SIGKILL)
    wanted = {f"{COOKIE_VARIABLE}={run.cookie}".encode(): run.uid for run in runs}
    deadline = time.monotonic() + within
    while _kill_carriers(wanted) and time.monotonic() < deadline:
        time.sleep(0.01)  # what was killed has time to go before the next look


def _kill_carriers(wanted: dict[bytes, int]) -> int:
    """One pass over ``/proc``: SIGKILL each process carrying a wanted cookie as its uid."""
    uids = set(wanted.values())
    killed = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            # The directory stands for this one process: if it dies and its PID is reused
            # meanwhile, reads and the signal below fail instead of reaching the new one.
            process = os.open(f"/proc/{name}", os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            continue
        try:
            uid = os.fstat(process).st_uid
            if uid in uids and _carries(process, wanted, uid):
                _sigkill(process, int(name))
                killed += 1
        except OSError:
            continue  # gone meanwhile, or not ours to read
        finally:
            os.close(process)
    return killed


def _carries(process: int, wanted: dict[bytes, int], uid: int) -> bool:
    fd = os.open("environ", os.O_RDONLY, dir_fd=process)
    try:
        environ = bytearray()
        while chunk := os.read(fd, 65536):
            environ += chunk
    finally:
        os.close(fd)
    return any(wanted.get(entry) == uid for entry in bytes(environ).split(b"\0"))


def _sigkill(process: int, pid: int) -> None:
    try:
        signal.pidfd_send_signal(process, signal.SIGKILL)
    except ProcessLookupError:
        return
    except OSError:  # a kernel before 5.1, or a sandbox that forbids it
        os.kill(pid, signal.SIGKILL)
