"""The guardian: when fleetrun dies, in any way, the scripts it was running die with it.

fleetrun starts one guardian process with its first script on this machine (a local run or
a sandbox machine's) and keeps the write end of a pipe to it, telling it which runs are
going (their cookie, user and process group, see :mod:`core.proctree`) and which folders
to remove at the end. When the pipe ends, fleetrun has exited or been killed (the kernel
closes the pipe even on SIGKILL): the guardian kills the runs still going, removes the
folders and exits. What ended normally was already cleaned up by fleetrun itself.

The process (:mod:`core.guardian_process`) is run by ``python -I -S`` with an empty
environment (none of fleetrun's secrets, no ``PYTHON*`` variable, no site-packages), in a
session of its own (no terminal, so no Ctrl-C or hang-up reaches it before fleetrun is
gone), with stdout and stderr on /dev/null and ``/`` as its working directory: it holds
nothing of fleetrun's open.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

from core.guardian_process import forget_line, remove_line, watch_line
from core.proctree import Tracked

log = logging.getLogger(__name__)

NAME = "fleetrun-guardian"
"""Its first argument, so that ``ps`` tells what it is."""
_BOOT = ("import sys; sys.path.insert(0, sys.argv[2]); "
         "from core.guardian_process import serve; serve()")
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


class Guardian:
    """fleetrun's side of the pipe. Thread-safe: the sandbox's thread uses it too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._runs: dict[str, Tracked] = {}
        self._folders: set[str] = set()
        self._failed = False

    @property
    def pid(self) -> int | None:
        """The guardian's PID, once started."""
        return None if self._process is None else self._process.pid

    def watch(self, run: Tracked) -> None:
        """Kill ``run`` if fleetrun dies before :meth:`forget`; again to give its group."""
        with self._lock:
            self._runs[run.cookie] = run
            self._send(watch_line(run))

    def forget(self, cookie: str) -> None:
        """The run has ended and fleetrun has cleaned up after it."""
        with self._lock:
            if self._runs.pop(cookie, None) is not None:
                self._send(forget_line(cookie))

    def remove_at_exit(self, folder: Path) -> None:
        """Remove ``folder`` and everything in it once fleetrun is gone."""
        with self._lock:
            self._folders.add(str(folder))
            self._send(remove_line(str(folder)))

    def _send(self, line: str) -> None:
        """Tell the guardian ``line``; a dead one is replaced, and told all that is pending."""
        for _ in range(2):
            process = self._process
            if process is None:
                process = self._process = self._start()
                if process is None:
                    return
                line = self._everything()
            assert process.stdin is not None
            try:
                process.stdin.write(line.encode())
                process.stdin.flush()
                return
            except OSError as exc:  # it died (killed by someone): a new one takes over
                log.warning("fleetrun's guardian process is gone (%s); starting another", exc)
                self._process = None

    def _everything(self) -> str:
        lines = [watch_line(run) for run in self._runs.values()]
        lines += [remove_line(folder) for folder in self._folders]
        return "".join(lines)

    def _start(self) -> subprocess.Popen[bytes] | None:
        if self._failed:
            return None
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _BOOT, NAME, _PACKAGE_ROOT],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={}, cwd="/", start_new_session=True,
            )
        except OSError as exc:
            # Runs still work and are still cleaned up when fleetrun ends normally.
            self._failed = True
            log.warning("cannot start fleetrun's guardian process (%s): scripts would outlive "
                        "a fleetrun killed with SIGKILL", exc)
            return None


_guardian: Guardian | None = None
_guardian_lock = threading.Lock()


def guardian() -> Guardian:
    """This process's guardian (its process starts with the first thing it is told)."""
    global _guardian
    with _guardian_lock:
        if _guardian is None:
            _guardian = Guardian()
        return _guardian

