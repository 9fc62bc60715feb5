"""Per machine and stream: the full output on disk, the 4 KB tail, and output grouping.

The full output is an append-only file that grows as ``OutputAppended`` events arrive, so
memory stays flat however much a machine prints; a stream that printed nothing has no file
(readers treat a missing file as empty output). The tail is what the instance view reports
(``TailUpdated``) or, before a backend reports one, the last 4096 bytes received.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.model import TAIL_BYTES, MachineId, MachineRun, RunState, Stream

_OPEN_FILES = 64
"""File descriptors kept open at once; a 10,000-machine run must not exhaust the limit."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def decode_tail(data: bytes) -> str:
    """Bytes as text for display: invalid UTF-8 (a cut character, binary) becomes U+FFFD."""
    return data.decode("utf-8", errors="replace")


def file_stem(machine_id: MachineId, name: str) -> str:
    """A file name that is safe, readable and unique even for ARM ids full of slashes."""
    readable = _UNSAFE.sub("_", name)[:48] or "machine"
    digest = hashlib.sha1(machine_id.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{readable}-{digest}"


@dataclass(slots=True)
class StreamOutput:
    """One stream of one machine."""

    path: str
    size: int = 0
    received_tail: bytearray = field(default_factory=bytearray)
    reported_tail: bytes | None = None
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    digest_pending: bool = False
    """The file holds bytes the digest has not seen yet (a run opened from history)."""

    @property
    def tail(self) -> bytes:
        if self.reported_tail is not None:
            return self.reported_tail
        return bytes(self.received_tail)


@dataclass(frozen=True, slots=True)
class OutputGroup:
    """Machines whose exit code and both streams are byte-identical so far."""

    exit_code: int | None
    machine_ids: tuple[MachineId, ...]
    stdout_tail: bytes
    stderr_tail: bytes
    key: tuple[int | None, bytes, bytes]

    @property
    def size(self) -> int:
        return len(self.machine_ids)


class OutputStore:
    """The outputs of one run, under ``run_dir``.

    Writes are idempotent by offset: bytes already stored are skipped, so a backend that
    re-reads a range (a blob tailer after a retry) never duplicates output.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._run_dir_text = str(run_dir)
        self._streams: dict[tuple[MachineId, Stream], StreamOutput] = {}
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._created_dir = False
        # Digests of recorded runs are completed from the files, maybe in a worker thread
        # (the TUI) while another asks for groups: one completion at a time.
        self._digest_lock = threading.Lock()
        self._pending_digests = 0

    def attach(self, machine_run: MachineRun, *, resume: bool = False) -> None:
        """Register a machine: decide its file paths and write them into the MachineRun.

        With ``resume``, what an earlier process stored for it counts as received (``fleetrun
        attach``): new bytes are appended after it, and re-read bytes are skipped.
        """
        # Plain strings, not Path objects: this runs once per machine before anything starts.
        base = os.path.join(
            self._run_dir_text, file_stem(machine_run.machine_id, machine_run.machine.name)
        )
        stdout = StreamOutput(f"{base}.stdout")
        stderr = StreamOutput(f"{base}.stderr")
        self._streams[(machine_run.machine_id, Stream.STDOUT)] = stdout
        self._streams[(machine_run.machine_id, Stream.STDERR)] = stderr
        machine_run.stdout_file = stdout.path
        machine_run.stderr_file = stderr.path
        if resume:
            for out in (stdout, stderr):
                try:
                    with open(out.path, "rb") as kept:
                        while block := kept.read(1 << 20):
                            out.size += len(block)
                            out.digest.update(block)
                            out.received_tail += block[-TAIL_BYTES:]
                            del out.received_tail[:-TAIL_BYTES]
                except FileNotFoundError:
                    continue
            machine_run.stdout_bytes, machine_run.stderr_bytes = stdout.size, stderr.size

    def stream(self, machine_id: MachineId, stream: Stream) -> StreamOutput:
        return self._streams[(machine_id, stream)]

    def append(self, machine_id: MachineId, stream: Stream, offset: int, data: bytes) -> int:
        """Store bytes that start at ``offset``; returns how many were new."""
        out = self._streams[(machine_id, stream)]
        # Bytes past the end (a backend that lost some) are kept, not dropped: a gap cannot
        # be repaired here, and losing the bytes that did arrive would be worse.
        if offset < out.size:
            data = data[out.size - offset :]
        if not data:
            return 0
        os.write(self._fd(out.path), data)
        out.size += len(data)
        out.digest.update(data)
        tail = out.received_tail
        tail += data[-TAIL_BYTES:]
        if len(tail) > TAIL_BYTES:
            del tail[: len(tail) - TAIL_BYTES]
        return len(data)

    def report_tail(self, machine_id: MachineId, stream: Stream, tail: bytes) -> None:
        self._streams[(machine_id, stream)].reported_tail = tail[-TAIL_BYTES:]

    def tail(self, machine_id: MachineId, stream: Stream) -> bytes:
        return self._streams[(machine_id, stream)].tail

    def load_recorded(self, machine_id: MachineId) -> None:
        """Take a finished machine's size and tail from its files (a run opened from history).

        Only the last 4096 bytes of each file are read, so a recorded run of any size opens
        at once; the digests grouping needs are computed from the whole files later, when
        first asked for (:meth:`complete_digests`).
        """
        for stream in Stream:
            out = self._streams[(machine_id, stream)]
            try:
                with open(out.path, "rb") as kept:
                    size = kept.seek(0, os.SEEK_END)
                    kept.seek(max(0, size - TAIL_BYTES))
                    out.received_tail = bytearray(kept.read(TAIL_BYTES))
                    out.size = size
                    if size and not out.digest_pending:
                        out.digest_pending = True
                        self._pending_digests += 1
            except FileNotFoundError:
                continue

    def pending_digests(self) -> int:
        """How many streams still need their file read before grouping is exact."""
        return self._pending_digests

    def complete_digests(self) -> int:
        """Read the files of recorded streams whose digests are pending; returns how many.

        Blocking file I/O proportional to the output kept: a front end with an event loop
        calls it in a thread first. Safe to call from several threads.
        """
        done = 0
        with self._digest_lock:
            for out in self._streams.values():
                if not out.digest_pending:
                    continue
                digest = hashlib.sha256()
                try:
                    with open(out.path, "rb") as kept:
                        while block := kept.read(1 << 20):
                            digest.update(block)
                except FileNotFoundError:
                    pass  # deleted since it was opened: it groups as empty output
                out.digest = digest
                out.digest_pending = False
                done += 1
            self._pending_digests = 0
        return done

    def finish(self, machine_id: MachineId) -> None:
        """Close the machine's files.

        A stream that printed nothing has no file: creating one costs more than everything
        else the engine does for a machine, and most stderr streams are empty.
        """
        for stream in Stream:
            fd = self._fds.pop(self._streams[(machine_id, stream)].path, None)
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        while self._fds:
            _, fd = self._fds.popitem()
            os.close(fd)

    def groups(self, machine_runs: Iterable[MachineRun]) -> list[OutputGroup]:
        """Identical outputs grouped, largest group first; live while the run goes on.

        Like ClusterShell's ``-b``, machines group only when their exit codes are equal too.
        Machines that never ran (pending, skipped, not started) are left out. A recorded
        run's files are read here first if :meth:`complete_digests` was not called.
        """
        if self.pending_digests():
            self.complete_digests()
        buckets: dict[tuple[int | None, bytes, bytes], list[MachineId]] = {}
        for mr in machine_runs:
            if mr.state in (RunState.PENDING, RunState.SKIPPED, RunState.NOT_STARTED):
                continue
            out = self._streams[(mr.machine_id, Stream.STDOUT)]
            err = self._streams[(mr.machine_id, Stream.STDERR)]
            key = (mr.exit_code, out.digest.digest(), err.digest.digest())
            buckets.setdefault(key, []).append(mr.machine_id)
        groups = [
            OutputGroup(
                exit_code=key[0],
                machine_ids=tuple(ids),
                stdout_tail=self.tail(ids[0], Stream.STDOUT),
                stderr_tail=self.tail(ids[0], Stream.STDERR),
                key=key,
            )
            for key, ids in buckets.items()
        ]
        # Ties: the lower exit code first, as clush --diff picks its reference.
        groups.sort(key=lambda g: (-g.size, g.exit_code if g.exit_code is not None else 1 << 31))
        return groups

    def _ensure_dir(self) -> None:
        if not self._created_dir:
            self.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._created_dir = True

    def _fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        self._ensure_dir()
        if len(self._fds) >= _OPEN_FILES:
            _, oldest = self._fds.popitem(last=False)
            os.close(oldest)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._fds[path] = fd
        return fd
