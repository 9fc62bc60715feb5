"""Output files written a moment after the bytes are stored, between the loop's other work.

Creating a file costs what the file system makes it cost, at times more than everything else
the engine does for a machine (ext4 without a journal: 0.02 ms a file, up to 1 ms when many
files nearby were deleted in the last half minute). Written as each machine's first bytes
arrive, 10,000 machines' files lengthened the burst in which the run starts them all, so
every machine started later. Here the writes wait for the loop's next turn and go out in
slices of a few milliseconds, in the time the machines spend waiting.

A thread does not help: its system calls release the GIL, but it needs the GIL back after
each one, and while the loop is busy it gets it only every switch interval (5 ms). Measured
at 0.05 ms a file: 90 of a 10,000-machine run's 20,000 writes were done when its 2 s ended.

Every write of a store goes through one queue, so the files always hold a prefix of what
was asked, in order: a marks record before the bytes it describes (what
:func:`core.output._resume_point` relies on after a crash). A process killed before the
queue is written loses it (at most what the loop received since its last slice, or the
backlog over a slow disk); ``fleetrun attach`` reads those bytes again from the machine.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict, deque
from enum import Enum, auto

log = logging.getLogger(__name__)

_OPEN_FILES = (64, 4096)
"""The fewest and the most file descriptors kept open at once, between them an eighth of
the process's limit (the entry points raise it to the hard limit). A 10,000-machine run
must not exhaust the limit, nor must a few runs at once; a thousand machines streaming at
once must not reopen a file for every line (with 64 kept, opening and closing was 70% of
the writer's time at 1,000 machines)."""


def open_files_kept() -> int:
    """How many output files one writer keeps open."""
    fewest, most = _OPEN_FILES
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return fewest
    if soft == resource.RLIM_INFINITY:
        return most
    return max(fewest, min(most, soft // 8))

_SLICE_SECONDS = 0.004
"""How long one turn of the loop writes before it lets the machines' events through."""

_MAX_BACKLOG = 16 << 20
"""Bytes waiting beyond which they are written at once: memory stays bounded."""


class _Op(Enum):
    APPEND = auto()
    MARKS = auto()
    CLOSE = auto()


class OutputWriter:
    """Appends to the files of one directory (created 0700 at the first write), in order.

    Called on an event loop, writes wait for a later turn of it; called without one, they
    are done at once. A write that fails (a full disk) is logged once and kept in
    :attr:`error`, and the run goes on, as it does when the journal cannot write.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.error: OSError | None = None
        """The first write that failed, if any."""
        self._ops: deque[tuple[_Op, str, bytes]] = deque()
        self._backlog = 0
        self._scheduled: asyncio.Handle | None = None
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._open_files = open_files_kept()
        self._made_dir = False

    def append(self, path: str, data: bytes) -> None:
        """Add ``data`` at the end of the file at ``path`` (created 0600 if missing)."""
        self._put(_Op.APPEND, path, data)

    def write_marks(self, path: str, record: bytes) -> None:
        """Write ``record`` (of a fixed size) at the start of the file at ``path``."""
        self._put(_Op.MARKS, path, record)

    def close_file(self, path: str) -> None:
        """Close the file's descriptor once its writes are done, if one is open."""
        self._put(_Op.CLOSE, path, b"")

    def flush(self) -> None:
        """Write everything asked so far, now; the files stay open."""
        if self._scheduled is not None:
            self._scheduled.cancel()
            self._scheduled = None
        while self._ops:
            self._apply(*self._ops.popleft())
        self._backlog = 0

    def close(self) -> None:
        """Write everything asked so far and close every file."""
        self.flush()
        while self._fds:
            _, fd = self._fds.popitem()
            os.close(fd)

    def _put(self, op: _Op, path: str, data: bytes) -> None:
        self._ops.append((op, path, data))
        self._backlog += len(data)
        if self._backlog > _MAX_BACKLOG:
            self.flush()
        elif self._scheduled is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._scheduled = loop.call_soon(self._write_slice)

    def _write_slice(self) -> None:
        self._scheduled = None
        ops = self._ops
        until = time.perf_counter() + _SLICE_SECONDS
        while ops:
            op, path, data = ops.popleft()
            self._backlog -= len(data)
            self._apply(op, path, data)
            if time.perf_counter() > until:
                break
        if ops:
            self._scheduled = asyncio.get_running_loop().call_soon(self._write_slice)

    def _apply(self, op: _Op, path: str, data: bytes) -> None:
        try:
            if op is _Op.APPEND:
                os.write(self._fd(path), data)
            elif op is _Op.MARKS:
                self._make_dir()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    os.pwrite(fd, data, 0)
                finally:
                    os.close(fd)
            else:
                fd = self._fds.pop(path, -1)
                if fd >= 0:
                    os.close(fd)
        except OSError as exc:
            if self.error is None:
                log.error("cannot write output file %s: %s", path, exc)
            self.error = exc

    def _fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        self._make_dir()
        if len(self._fds) >= self._open_files:
            _, oldest = self._fds.popitem(last=False)
            os.close(oldest)
        # Never through a link: --output-dir's files sit in a directory others may write.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW,
                     0o600)
        self._fds[path] = fd
        return fd

    def _make_dir(self) -> None:
        if not self._made_dir:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            self._made_dir = True
