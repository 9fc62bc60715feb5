"""Where fleetrun keeps temporary folders on this machine, and cleaning up after dead ones.

One place per user, ``$TMPDIR/fleetrun-<uid>``, holds one folder per fleetrun process,
named after the process's PID and start time: local runs' working folders and the sandbox's
machines live in it. Both are 0711: a run-as user can pass through to its run's own 0700
folder, and nobody but the owner can list them. The guardian (:mod:`core.guardian`)
removes a process's folder once the process has ended, in whatever way. Should the
guardian have died with it, the next fleetrun to use the place removes the folders whose
process is gone, and never one of a process still running.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from core.errors import FleetrunError
from core.guardian import guardian

_OWNED = re.compile(r"(\d+)-(\d+)")
_lock = threading.Lock()
_made: Path | None = None


class ScratchError(FleetrunError):
    """The place cannot be used; the message says why and what to do."""


def folder_path() -> Path:
    """This process's folder, without making it (see :func:`folder`)."""
    return _base() / _name_of(os.getpid())


def folder() -> Path:
    """This process's folder: made on first use, after removing those of dead processes.

    Raises:
        ScratchError: the place is not a private folder of this user, or cannot be made.
    """
    global _made
    with _lock:
        if _made is not None:
            return _made
        base = _base()
        try:
            _ensure_private(base)
            _sweep(base)
            own = base / _name_of(os.getpid())
            own.mkdir(mode=0o711, exist_ok=True)
            own.chmod(0o711)  # the umask may have taken the run-as user's way through
        except OSError as exc:
            raise ScratchError(f"cannot use {base} for temporary folders: {exc}") from exc
        guardian().remove_at_exit(own)
        _made = own
        return own


def _base() -> Path:
    return Path(tempfile.gettempdir()) / f"fleetrun-{os.geteuid()}"


def _ensure_private(base: Path) -> None:
    try:
        base.mkdir(mode=0o711)
        base.chmod(0o711)
    except FileExistsError:
        pass
    found = os.lstat(base)
    problem = ""
    if not stat.S_ISDIR(found.st_mode):
        problem = "not a folder (a link or a file)"
    elif found.st_uid != os.geteuid():
        problem = f"owned by uid {found.st_uid}, not by this user"
    elif found.st_mode & 0o022:
        problem = f"writable by others (mode {stat.S_IMODE(found.st_mode):o})"
    if problem:
        raise ScratchError(f"cannot use {base} for temporary folders: it is {problem}; "
                           "remove it, or set TMPDIR to another folder")


def _sweep(base: Path) -> None:
    """Remove the folders of fleetrun processes that are gone."""
    for entry in os.scandir(base):
        owner = _OWNED.fullmatch(entry.name)
        if owner is None or not entry.is_dir(follow_symlinks=False):
            continue  # not one of ours: left alone
        if _start_time(int(owner.group(1))) != owner.group(2):
            shutil.rmtree(entry.path, ignore_errors=True)


def _name_of(pid: int) -> str:
    return f"{pid}-{_start_time(pid)}"


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot): with the PID, names one process ever."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which may hold spaces and parentheses; starttime is 22nd.
    return stat_line.rsplit(")", 1)[1].split()[19]
