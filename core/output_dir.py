"""``--output-dir DIR``: each machine's stdout and stderr in ``DIR/<machine>.out`` and
``.err``, as pssh ``-o``/``-e`` write them.

The files hold the bytes as the run's output store holds them: byte for byte what the
machine printed, with protected values already masked (:mod:`core.redaction`), so a secret
never reaches them. They are written as output arrives (through the store's
:class:`core.output_writer.OutputWriter`, between the loop's other work) and are complete
when the run ends. A machine gets both files when it starts (empty if it prints nothing);
one that never starts (skipped, not started, canceled while pending) gets none, as pssh
writes files only for the hosts it ran on. An existing file of that name is replaced
(removed, then created anew, so a link planted there is not followed). The directory is
created 0700 when missing, the files 0600: output often holds what only its owner should
read.

A file's name is the machine's name made safe (:func:`file_names`); two machines whose
names end up alike (``web`` in two resource groups, ``Web`` and ``web`` on a file system
that folds case) get ``.1``, ``.2``, ... after the second and later, as pssh names repeats
of one host.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterable, Iterable
from pathlib import Path

from core.errors import BadInputError
from core.events import Event, Finished, OutputAppended, StateChanged
from core.model import MachineId, Run, RunState, Stream
from core.output import OutputStore
from core.output_in_order import OutputInOrder
from core.output_writer import OutputWriter

SUFFIXES = {Stream.STDOUT: ".out", Stream.STDERR: ".err"}

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=,-]")
"""Anything but these becomes ``_``: no ``/``, no control or shell-awkward characters."""

_MAX_STEM = 200
"""Characters of a name kept: with a suffix and ``.N`` it stays under 255 bytes."""


class OutputDirError(BadInputError):
    """``--output-dir`` names a place where the files cannot be written."""


def safe_name(name: str) -> str:
    """``name`` as a file name: readable, one path component, never hidden or ``..``."""
    safe = _UNSAFE.sub("_", name)[:_MAX_STEM] or "machine"
    return "_" + safe[1:] if safe.startswith(".") else safe


def file_names(machines: Iterable[tuple[MachineId, str]]) -> dict[MachineId, str]:
    """Each machine's file name (without suffix), unique even where case is folded."""
    taken: set[str] = set()
    names: dict[MachineId, str] = {}
    for machine_id, name in machines:
        stem = candidate = safe_name(name)
        repeat = 0
        while candidate.casefold() in taken:
            repeat += 1
            candidate = f"{stem}.{repeat}"
        taken.add(candidate.casefold())
        names[machine_id] = candidate
    return names


def prepare_output_dir(path: str) -> Path:
    """The directory, created 0700 (with its parents) if missing; bad input if unusable."""
    directory = Path(path).expanduser()
    if directory.is_dir():
        if not os.access(directory, os.W_OK | os.X_OK):
            raise OutputDirError(f"--output-dir: {path}: cannot write there (permission "
                                 "denied); give a directory you can write", where=path)
        return directory
    if directory.exists() or directory.is_symlink():
        raise OutputDirError(f"--output-dir: {path}: exists and is not a directory; give a "
                             "directory, or a path to create", where=path)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700)
        directory.chmod(0o700)  # whatever the umask
    except OSError as exc:
        raise OutputDirError(f"--output-dir: cannot create {path}: "
                             f"{exc.strerror or exc}", where=path) from None
    return directory


class OutputDir:
    """Writes one run's output into a directory, from the run's events."""

    def __init__(self, directory: Path, run: Run, store: OutputStore) -> None:
        self.directory = directory
        self._run = run
        self._store = store
        # Every machine's name is settled up front, so the numbering of alike names does
        # not depend on which machine starts first.
        stems = file_names((mid, mr.machine.name) for mid, mr in run.machines.items())
        self.paths: dict[tuple[MachineId, Stream], str] = {
            (mid, stream): str(directory / f"{stem}{suffix}")
            for mid, stem in stems.items() for stream, suffix in SUFFIXES.items()
        }
        self._in_order = OutputInOrder(store)
        self._writer = OutputWriter(str(directory))
        self._created: set[MachineId] = set()
        self._unwritable: set[MachineId] = set()
        self._create_error: OSError | None = None

    async def write(self, events: AsyncIterable[Event]) -> None:
        """Follow the run to its end; every file is complete when this returns."""
        try:
            async for event in events:
                if isinstance(event, OutputAppended):
                    if self._create(event.machine_id):
                        path = self.paths[(event.machine_id, event.stream)]
                        for chunk in self._in_order.chunks(event):
                            self._writer.append(path, chunk)
                elif isinstance(event, StateChanged):
                    if event.state is RunState.RUNNING:
                        self._create(event.machine_id)
                elif isinstance(event, Finished):
                    self._complete(event.machine_id)
            # The subscription may end with events still unread (it closes with the run):
            # what the store holds and the files lack is read back now.
            for machine_id in self._run.machines:
                self._complete(machine_id)
        finally:
            self._writer.close()

    def _ran(self, machine_id: MachineId) -> bool:
        """Whether the machine started (or printed: a backend may not say it started)."""
        if machine_id in self._created or self._run.machines[machine_id].started is not None:
            return True
        return any(self._store.stream(machine_id, stream).size for stream in SUFFIXES)

    def _create(self, machine_id: MachineId) -> bool:
        """The machine's two files, replaced by empty ones the first time; False if they
        could not be made (said once, by :meth:`problem`)."""
        if machine_id in self._created:
            return True
        if machine_id in self._unwritable:
            return False
        try:
            for stream in SUFFIXES:
                _replace_with_empty(self.paths[(machine_id, stream)])
        except OSError as exc:
            self._unwritable.add(machine_id)
            self._create_error = self._create_error or exc
            return False
        self._created.add(machine_id)
        return True

    def _complete(self, machine_id: MachineId) -> None:
        if not self._ran(machine_id) or not self._create(machine_id):
            return
        for stream in SUFFIXES:
            path = self.paths[(machine_id, stream)]
            for chunk in self._in_order.rest(machine_id, stream):
                self._writer.append(path, chunk)
            self._writer.close_file(path)

    def problem(self) -> str:
        """Why some output could not be written here (a full disk); '' if none."""
        error = self._create_error or self._writer.error
        if error is None:
            return ""
        where = error.filename or self.directory
        return f"--output-dir: files incomplete: cannot write {where}: {error.strerror or error}"


def _replace_with_empty(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    os.close(fd)
