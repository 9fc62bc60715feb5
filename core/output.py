"""Per machine and stream: the full output on disk, the 4 KB tail, and output grouping.

The full output is an append-only file that grows as ``OutputAppended`` events arrive, so
memory stays flat however much a machine prints; a stream that printed nothing has no file
(readers treat a missing file as empty output). The tail is what the instance view reports
(``TailUpdated``) or, before a backend reports one, the last 4096 bytes received.

What is stored has protected values masked already (:mod:`core.redaction`, applied by the
fan-out engine), so a file can be shorter or longer than what the machine printed. Where a
stream's file ends in the machine's own byte offsets is kept beside it (``.marks``) once
they differ, so that ``fleetrun attach`` knows where to take up a stream read again from
its start.

The files are written by :class:`core.output_writer.OutputWriter` in the order stored, on
the loop's next turn: a reader that follows a file while the run goes on sees it grow a
moment after the engine stored the bytes; after :meth:`OutputStore.close` (the engine
calls it when the run ends) or :meth:`OutputStore.flush`, every byte is there.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.model import TAIL_BYTES, MachineId, MachineRun, RunState, Stream
from core.output_writer import OutputWriter
from core.redaction import Mark

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

NOISE_BYTES = 1 << 20
"""A stream grouped modulo noise is read whole up to this size; a bigger one groups by its
bytes (its noise kept): reading and normalizing megabytes per machine on every redraw of a
live run would cost more than the grouping is worth."""


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
    start: Mark = field(default_factory=Mark)
    """Where the stored output ended, in the source's offsets, when this process took over."""
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
    stdout_size: int = 0
    """How many bytes the first machine's stdout holds: the tail starts mid-line when more."""
    stderr_size: int = 0

    @property
    def size(self) -> int:
        return len(self.machine_ids)


class OutputStore:
    """The outputs of one run, under ``run_dir``.

    Bytes come already masked, each once (the redactor before it skips a re-read range);
    every write says where it leaves the stream in the source's offsets, so that a later
    process can take it up again (:meth:`attach` with ``resume``).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._run_dir_text = str(run_dir)
        self._streams: dict[tuple[MachineId, Stream], StreamOutput] = {}
        self._writer = OutputWriter(self._run_dir_text)
        # Digests of recorded runs are completed from the files, maybe in a worker thread
        # (the TUI) while another asks for groups: one completion at a time.
        self._digest_lock = threading.Lock()
        self._pending_digests = 0
        # Digests of the streams' text modulo noise, by the size they were taken at.
        self._noise_digests: dict[tuple[MachineId, Stream], tuple[int, bytes]] = {}

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
                out.start = _resume_point(out.path)
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

    def append(self, machine_id: MachineId, stream: Stream, data: bytes, *,
               before: Mark | None = None, after: Mark | None = None) -> int:
        """Store ``data`` at the end of the stream; returns how many bytes were written.

        ``before`` and ``after`` say where the stream stood in the source's offsets before
        and after these bytes; when the two no longer map byte for byte (something was
        masked), they are recorded first, so a crash at any point leaves a file and a
        record that agree (see :func:`_resume_point`).
        """
        out = self._streams[(machine_id, stream)]
        if before is not None and after is not None and (
                after.source - before.source != len(data) or before.carry or after.carry
                or after.masked != before.masked):
            self._writer.write_marks(
                marks_path(out.path), _marks_record(out.size, before, out.size + len(data), after))
        if not data:
            return 0
        self._writer.append(out.path, data)
        out.size += len(data)
        out.digest.update(data)
        tail = out.received_tail
        tail += data[-TAIL_BYTES:]
        if len(tail) > TAIL_BYTES:
            del tail[: len(tail) - TAIL_BYTES]
        return len(data)

    def report_tail(self, machine_id: MachineId, stream: Stream, tail: bytes) -> None:
        self._streams[(machine_id, stream)].reported_tail = tail[-TAIL_BYTES:]

    def resume_point(self, machine_id: MachineId, stream: Stream) -> Mark:
        """Where the stored output ended, in source offsets, when the machine was attached."""
        return self._streams[(machine_id, stream)].start

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
        """Close the machine's files once what it stored is written.

        A stream that printed nothing has no file: creating one costs more than everything
        else the engine does for a machine, and most stderr streams are empty.
        """
        for stream in Stream:
            out = self._streams[(machine_id, stream)]
            if out.size:
                self._writer.close_file(out.path)

    def flush(self) -> None:
        """Write every byte stored so far to the files now (blocking; on the loop's thread)."""
        self._writer.flush()

    def close(self) -> None:
        """Write what is left and close every file; the run's files are complete."""
        self._writer.close()

    def write_problem(self) -> str:
        """Why some output could not be written to the files (a full disk); '' if none."""
        error = self._writer.error
        if error is None:
            return ""
        return (f"output files incomplete: cannot write in {self._run_dir_text}: "
                f"{error.strerror or error}")

    def groups(self, machine_runs: Iterable[MachineRun], *, noise: bool = False
               ) -> list[OutputGroup]:
        """Identical outputs grouped, largest group first; live while the run goes on.

        Like ClusterShell's ``-b``, machines group only when their exit codes are equal too.
        Machines that never ran (pending, skipped, not started) are left out. A recorded
        run's files are read here first if :meth:`complete_digests` was not called. With
        ``noise``, outputs are compared modulo noise (:mod:`core.output_noise`): their files
        are read (blocking; what was read before is not read again).
        """
        if self.pending_digests():
            self.complete_digests()
        if noise:  # here: only grouping modulo noise pays for its regular expressions
            from core.output_noise import machine_names
        buckets: dict[tuple[int | None, bytes, bytes], list[MachineId]] = {}
        for mr in machine_runs:
            if mr.state in (RunState.PENDING, RunState.SKIPPED, RunState.NOT_STARTED):
                continue
            if noise:
                names = machine_names(mr.machine)
                key = (mr.exit_code, self._noise_digest(mr.machine_id, Stream.STDOUT, names),
                       self._noise_digest(mr.machine_id, Stream.STDERR, names))
            else:
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
                stdout_size=self._streams[(ids[0], Stream.STDOUT)].size,
                stderr_size=self._streams[(ids[0], Stream.STDERR)].size,
            )
            for key, ids in buckets.items()
        ]
        # Ties: the lower exit code first, as clush --diff picks its reference.
        groups.sort(key=lambda g: (-g.size, g.exit_code if g.exit_code is not None else 1 << 31))
        return groups

    def _noise_digest(self, machine_id: MachineId, stream: Stream, names: tuple[str, ...]
                      ) -> bytes:
        """The digest of a stream's text modulo noise; of its bytes when it is too big."""
        out = self._streams[(machine_id, stream)]
        if out.size > NOISE_BYTES:
            return b"raw:" + out.digest.digest()
        kept = self._noise_digests.get((machine_id, stream))
        if kept is not None and kept[0] == out.size:
            return kept[1]
        try:
            with open(out.path, "rb") as handle:
                data = handle.read(NOISE_BYTES + 1)
        except FileNotFoundError:
            data = b""
        from core.output_noise import normalize_noise

        text = normalize_noise(data.decode("utf-8", errors="replace"), names)
        digest = hashlib.sha256(text.encode()).digest()
        # The writer may not have written the last bytes yet: not kept until it has.
        if len(data) == out.size:
            self._noise_digests[(machine_id, stream)] = (out.size, digest)
        return digest


_MARK_FIELDS = 8
_MARK_WIDTH = 20


def marks_path(path: str) -> str:
    """Where the offsets of a stream's file are kept beside it."""
    return f"{path}.marks"


def _marks_record(size_before: int, before: Mark, size_after: int, after: Mark) -> bytes:
    """The record of a write about to happen: the file's size and the source's mark before
    and after.

    Fixed width and written in place, so the record is always whole.
    """
    fields = (size_before, before.source, before.carry, before.masked,
              size_after, after.source, after.carry, after.masked)
    return (" ".join(f"{value:0{_MARK_WIDTH}d}" for value in fields) + "\n").encode()


def _resume_point(path: str) -> Mark:
    """Where a stream's stored file ends in the source's offsets, for a new process.

    It counts the ``***`` stored up to there too. The last write's record came before the
    write: a file that is longer than the record's
    "after" has had unmasked bytes appended since (they map byte for byte); one that is
    shorter than it was cut short by a crash and is cut back to the record's "before", so
    the re-read brings those bytes again. No record means nothing was ever masked.
    """
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        size = 0
    try:
        with open(marks_path(path), "rb") as kept:
            fields = [int(field) for field in kept.read().split()]
    except (FileNotFoundError, ValueError):
        return Mark(size, 0)
    if len(fields) != _MARK_FIELDS:
        return Mark(size, 0)
    (size_before, source_before, carry_before, masked_before,
     size_after, source_after, carry_after, masked_after) = fields
    if size >= size_after:
        return Mark(source_after + size - size_after,
                    carry_after if size == size_after else 0, masked_after)
    if size >= size_before:
        if size > size_before:
            os.truncate(path, size_before)
        return Mark(source_before, carry_before, masked_before)
    return Mark(max(0, source_before - (size_before - size)), 0, masked_before)
