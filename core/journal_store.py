"""The run history store: one SQLite database, its schema and migrations, its queries.

This is what ``history`` and ``show`` read, and what :mod:`core.journal_writer` writes into
as a run goes. Crash safety comes from WAL mode plus one committed transaction per batch:
after a ``kill -9`` everything committed is there. A run whose owning process is gone while
its row still says ``running`` is reported (and stored) as interrupted when next read.

Secrets never reach the database: commands are stored only as ``Command.redacted()``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, cast

from core.errors import FleetrunError
from core.model import MachineId, MachineRun, Run, RunState
from core.run_search import RunFilter

log = logging.getLogger(__name__)

INTERRUPTED_ERROR = "run interrupted: fleetrun stopped before this machine finished"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, created TEXT NOT NULL, ended TEXT,
        parent_run_id TEXT NOT NULL DEFAULT '', fleet TEXT NOT NULL DEFAULT '',
        target TEXT NOT NULL DEFAULT '', stop_reason TEXT NOT NULL DEFAULT '',
        commands_json TEXT NOT NULL DEFAULT '[]',
        pid INTEGER NOT NULL, pid_start TEXT NOT NULL DEFAULT '', host TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'running'
            CHECK (status IN ('running', 'finished', 'interrupted'))
    );
    CREATE INDEX runs_newest_first ON runs (created DESC, run_id DESC);
    CREATE INDEX runs_running ON runs (host) WHERE status = 'running';
    CREATE TABLE machine_runs (
        run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
        machine_id TEXT NOT NULL, name TEXT NOT NULL, kind TEXT NOT NULL, os TEXT NOT NULL,
        location TEXT NOT NULL DEFAULT '', subscription TEXT NOT NULL DEFAULT '',
        tags_json TEXT NOT NULL DEFAULT '{}', command_index INTEGER NOT NULL,
        state TEXT NOT NULL, exit_code INTEGER, started TEXT, ended TEXT,
        error TEXT NOT NULL DEFAULT '',
        stdout_bytes INTEGER NOT NULL DEFAULT 0, stderr_bytes INTEGER NOT NULL DEFAULT 0,
        stdout_file TEXT NOT NULL DEFAULT '', stderr_file TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (run_id, machine_id)
    );
    """,
    # Occurrences of protected values masked in each machine's output and error.
    """
    ALTER TABLE machine_runs ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
    """,
    # The saved command a run was made from (name and content hash); empty for an ad-hoc
    # script, and for every run recorded before this.
    """
    ALTER TABLE runs ADD COLUMN saved_command TEXT NOT NULL DEFAULT '';
    ALTER TABLE runs ADD COLUMN saved_hash TEXT NOT NULL DEFAULT '';
    """,
    # The output group(s) of the parent run a run's machines were chosen from (a label).
    """
    ALTER TABLE runs ADD COLUMN source_group TEXT NOT NULL DEFAULT '';
    """,
]
"""Schema scripts in order; ``PRAGMA user_version`` counts how many were applied."""

_RUN_COLUMNS = (
    "run_id, created, ended, parent_run_id, fleet, target, stop_reason, commands_json, "
    "pid, host, status, saved_command, saved_hash, source_group"
)
_MACHINE_COLUMNS = (
    "machine_id, name, kind, os, location, subscription, tags_json, command_index, state, "
    "exit_code, started, ended, error, stdout_bytes, stderr_bytes, stdout_file, stderr_file, "
    "masked"
)
_UPSERT_RUN = """
    INSERT INTO runs (run_id, created, ended, parent_run_id, fleet, target, stop_reason,
                      pid, pid_start, host, status, saved_command, saved_hash,
                      source_group)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id) DO UPDATE SET
        ended = excluded.ended, stop_reason = excluded.stop_reason, status = excluded.status
"""
_UPSERT_MACHINE = f"""
    INSERT INTO machine_runs (run_id, {_MACHINE_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id, machine_id) DO UPDATE SET
        state = excluded.state, exit_code = excluded.exit_code, started = excluded.started,
        ended = excluded.ended, error = excluded.error, stdout_bytes = excluded.stdout_bytes,
        stderr_bytes = excluded.stderr_bytes, stdout_file = excluded.stdout_file,
        stderr_file = excluded.stderr_file, masked = excluded.masked
"""

_UPDATE_PROGRESS = """
    UPDATE machine_runs SET state = ?, exit_code = ?, started = ?, ended = ?, error = ?,
        stdout_bytes = ?, stderr_bytes = ?, masked = ?
    WHERE run_id = ? AND machine_id = ?
"""
_END_RUN = """
    UPDATE runs SET ended = ?, stop_reason = ?, status = 'finished' WHERE run_id = ?
"""


class JournalError(FleetrunError):
    """The journal cannot do what was asked; the message says why, for a person."""


RunStatus = Literal["running", "finished", "interrupted"]


class MachineProgress(NamedTuple):
    """What changes about a machine as it runs: all a live run writes after its first record.

    Taken on the engine's loop (a tuple of attribute reads, cheap for 10,000 machines), so a
    write in a worker thread never sees a machine half-way through a change.
    """

    machine_id: MachineId
    state: RunState
    exit_code: int | None
    started: datetime | None
    ended: datetime | None
    error: str
    stdout_bytes: int
    stderr_bytes: int
    masked: int

    @classmethod
    def of(cls, mr: MachineRun) -> MachineProgress:
        return cls(mr.machine.id, mr.state, mr.exit_code, mr.started, mr.ended, mr.error,
                   mr.stdout_bytes, mr.stderr_bytes, mr.masked)


@dataclass(frozen=True, slots=True)
class MachineRecord:
    """One machine's part of a recorded run."""

    machine_id: MachineId
    name: str
    kind: str
    os: str
    location: str
    subscription: str
    tags: dict[str, str]
    command_index: int
    state: RunState
    exit_code: int | None
    started: datetime | None
    ended: datetime | None
    error: str
    stdout_bytes: int
    stderr_bytes: int
    stdout_file: str
    stderr_file: str
    masked: int = 0
    """Occurrences of protected values masked in its output and error."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A recorded run. ``machines`` is empty in :meth:`Journal.list_runs` results."""

    run_id: str
    created: datetime
    ended: datetime | None
    parent_run_id: str
    fleet: str
    target: str
    stop_reason: str
    commands: tuple[dict[str, Any], ...]
    pid: int
    host: str
    status: RunStatus
    summary: dict[str, int]
    machine_count: int
    machines: tuple[MachineRecord, ...] = ()
    source_group: str = ""
    """The parent run's output group(s) its machines were chosen from, if any."""
    saved_command: str = ""
    """The saved command it ran, by name; empty for an ad-hoc script."""
    saved_hash: str = ""
    """That saved command's content hash then (see ``SavedCommand.content_hash``)."""

    def saved_label(self) -> str:
        """The saved command it ran, as ``name #hash`` (6 hex digits); empty for ad hoc."""
        if not self.saved_command:
            return ""
        short = self.saved_hash.removeprefix("sha256:")[:6]
        return f"{self.saved_command} #{short}" if short else self.saved_command

    def command_for(self, machine: MachineRecord) -> dict[str, Any]:
        """The (redacted) command a machine ran."""
        return self.commands[machine.command_index]


class Journal:
    """The run history database. Thread-safe: one thread uses the connection at a time."""

    def __init__(self, path: Path) -> None:
        """Open or create the journal at ``path`` and bring its schema up to date.

        Raises:
            JournalError: the file is not a journal, or a newer fleetrun wrote it.
        """
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Scripts and host names are sensitive; SQLite gives -wal/-shm the same mode.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            # isolation_level=None: no implicit transactions, every one is explicit below.
            self._conn = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL loses nothing on a process crash, only on power loss.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so a batch never fails half-way on a
        # lock upgrade; any error rolls the whole batch back.
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        def version() -> int:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

        if version() == len(MIGRATIONS):
            return
        with self._transaction() as conn:
            current = version()  # again, under the write lock: another process may have won
            if current > len(MIGRATIONS):
                raise JournalError(
                    f"the journal {self.path} has schema {current}, newer than this fleetrun "
                    f"knows ({len(MIGRATIONS)}); upgrade fleetrun"
                )
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    # -- writing -------------------------------------------------------------------------

    def record_run(self, run: Run,
                   progress: Mapping[MachineId, MachineProgress] | None = None) -> None:
        """Insert (or refresh) a run and every one of its machines as they are now.

        ``progress`` gives the machines' changing fields as taken on the engine's loop while
        the run goes on; the machine objects are then read only for what never changes.
        """
        self._save_run(run, "running", progress)

    def finish_run(self, run: Run) -> None:
        """Record the end of a run: its end time, stop reason and every machine."""
        self._save_run(run, "finished", None)

    def record_machines(self, run_id: str, machine_runs: Iterable[MachineRun]) -> None:
        """Upsert the current state of some machines of a recorded run, all or nothing.

        Raises:
            JournalError: the run is not in the journal.
        """
        with self._transaction() as conn:
            self._upsert_machines(conn, run_id, machine_runs, None)

    def record_progress(self, run_id: str, progress: Sequence[MachineProgress]) -> None:
        """Update what changed about machines already recorded, all or nothing.

        Raises:
            JournalError: the run, or one of the machines, is not in the journal.
        """
        with self._transaction() as conn:
            self._update_progress(conn, run_id, progress)

    def end_run(self, run_id: str, ended: datetime | None, stop_reason: str,
                progress: Sequence[MachineProgress] = ()) -> None:
        """Record the end of a recorded run, with the last changes of some of its machines.

        Raises:
            JournalError: the run, or one of the machines, is not in the journal.
        """
        with self._transaction() as conn:
            if not conn.execute(_END_RUN, (_ts(ended), stop_reason, run_id)).rowcount:
                raise JournalError(f"run {run_id} is not in the journal")
            self._update_progress(conn, run_id, progress)

    @staticmethod
    def _update_progress(conn: sqlite3.Connection, run_id: str,
                         progress: Sequence[MachineProgress]) -> None:
        rows = [
            (str(p.state), p.exit_code, _ts(p.started), _ts(p.ended), p.error, p.stdout_bytes,
             p.stderr_bytes, p.masked, run_id, p.machine_id)
            for p in progress
        ]
        updated = conn.executemany(_UPDATE_PROGRESS, rows).rowcount
        if updated != len(rows):
            raise JournalError(f"run {run_id} or some of its machines are not in the journal")

    def _save_run(self, run: Run, status: RunStatus,
                  progress: Mapping[MachineId, MachineProgress] | None) -> None:
        row = (
            run.run_id, _ts(run.created), _ts(run.ended), run.parent_run_id, run.fleet,
            run.target, run.stop_reason, run.pid, _start_token(run.pid) or "",
            socket.gethostname(), status, *_saved_of(run), run.source_group,
        )  # fmt: skip
        with self._transaction() as conn:
            conn.execute(_UPSERT_RUN, row)
            self._upsert_machines(conn, run.run_id, run.machines.values(), progress)

    @staticmethod
    def _upsert_machines(
        conn: sqlite3.Connection, run_id: str, machine_runs: Iterable[MachineRun],
        progress: Mapping[MachineId, MachineProgress] | None,
    ) -> None:
        found = conn.execute("SELECT commands_json FROM runs WHERE run_id = ?", (run_id,))
        stored = found.fetchone()
        if stored is None:
            raise JournalError(f"run {run_id} is not in the journal")
        # The command list grows as machines bring commands it has not seen; commands
        # that look the same once redacted are stored once.
        commands: list[dict[str, Any]] = json.loads(stored[0])
        known = len(commands)
        index_of: dict[int, int] = {}
        rows = []
        for mr in machine_runs:
            if id(mr.command) not in index_of:
                redacted = mr.command.redacted()
                if redacted not in commands:
                    commands.append(redacted)
                index_of[id(mr.command)] = commands.index(redacted)
            m = mr.machine
            tags = json.dumps(dict(m.tags), ensure_ascii=False, sort_keys=True) if m.tags else "{}"
            p = progress[m.id] if progress is not None else MachineProgress.of(mr)
            rows.append((
                run_id, m.id, m.name, str(m.kind), str(m.os), m.location, m.subscription,
                tags, index_of[id(mr.command)], str(p.state), p.exit_code, _ts(p.started),
                _ts(p.ended), p.error, p.stdout_bytes, p.stderr_bytes, mr.stdout_file,
                mr.stderr_file, p.masked,
            ))  # fmt: skip
        if len(commands) != known:
            conn.execute(
                "UPDATE runs SET commands_json = ? WHERE run_id = ?",
                (json.dumps(commands, ensure_ascii=False), run_id),
            )
        conn.executemany(_UPSERT_MACHINE, rows)

    # -- reading -------------------------------------------------------------------------

    def list_runs(self, limit: int = 50, where: RunFilter | None = None) -> list[RunRecord]:
        """The newest ``limit`` runs ``where`` keeps, newest first, with state counts but no
        machines."""
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, not {limit}")
        self._mark_interrupted()
        condition, params = (where or RunFilter()).sql()
        newest = (f"SELECT {_RUN_COLUMNS} FROM runs WHERE {condition} "
                  "ORDER BY created DESC, run_id DESC LIMIT ?")
        with self._transaction(write=False) as conn:
            rows = conn.execute(newest, (*params, limit)).fetchall()
            counts = conn.execute(
                "SELECT run_id, state, COUNT(*) FROM machine_runs WHERE run_id IN "
                f"(SELECT run_id FROM ({newest})) GROUP BY run_id, state",
                (*params, limit),
            ).fetchall()
        summaries: dict[str, dict[str, int]] = {}
        for run_id, state, count in counts:
            summaries.setdefault(run_id, {})[state] = count
        return [_run_record(row, summaries.get(row[0], {}), ()) for row in rows]

    def count_runs(self, where: RunFilter | None = None) -> int:
        """How many runs ``where`` keeps (all of them without it)."""
        condition, params = (where or RunFilter()).sql()
        with self._transaction(write=False) as conn:
            found = conn.execute(f"SELECT COUNT(*) FROM runs WHERE {condition}", params)
            return int(found.fetchone()[0])

    def get_run(self, ref: str) -> RunRecord:
        """A run with its machines, by id or by a prefix that only one run id has.

        Raises:
            JournalError: no run matches, or the prefix matches several.
        """
        ref = ref.strip()
        if not ref:
            raise JournalError("give a run id (or its first characters)")
        self._mark_interrupted()
        with self._transaction(write=False) as conn:
            matching = "SELECT run_id FROM runs WHERE substr(run_id, 1, ?) = ? ORDER BY run_id"
            ids = [r[0] for r in conn.execute(matching, (len(ref), ref))]
            if ref in ids:
                ids = [ref]
            if not ids:
                raise JournalError(f"no run matches {ref!r}; 'fleetrun history' lists runs")
            if len(ids) > 1:
                shown = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
                raise JournalError(
                    f"{ref!r} matches {len(ids)} runs: {shown}; give more characters"
                )
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", ids).fetchone()
            machine_rows = conn.execute(
                f"SELECT {_MACHINE_COLUMNS} FROM machine_runs WHERE run_id = ? ORDER BY rowid",
                ids,
            ).fetchall()
        machines = tuple(_machine_record(r) for r in machine_rows)
        summary: dict[str, int] = {}
        for m in machines:
            summary[str(m.state)] = summary.get(str(m.state), 0) + 1
        return _run_record(row, summary, machines)

    def _mark_interrupted(self) -> None:
        """Store as interrupted every run of this host whose owning process is gone."""
        with self._transaction(write=False) as conn:
            running = conn.execute(
                "SELECT run_id, pid, pid_start FROM runs WHERE status = 'running' AND host = ?",
                (socket.gethostname(),),
            ).fetchall()
        # Checked outside the transaction: reading /proc needs no database lock.
        gone = [run_id for run_id, pid, token in running if not _owner_alive(pid, token)]
        if not gone:
            return
        with self._transaction() as conn:
            for run_id in gone:
                updated = conn.execute(
                    "UPDATE runs SET status = 'interrupted' "
                    "WHERE run_id = ? AND status = 'running'",
                    (run_id,),
                )
                if updated.rowcount:
                    # Keep what was received (exit codes, bytes, files, start times).
                    conn.execute(
                        "UPDATE machine_runs SET state = ?, error = ? WHERE run_id = ? "
                        "AND state IN (?, ?, ?)",
                        (str(RunState.UNKNOWN), INTERRUPTED_ERROR, run_id,
                         str(RunState.PENDING), str(RunState.RUNNING), str(RunState.UNKNOWN)),
                    )  # fmt: skip


def _saved_of(run: Run) -> tuple[str, str]:
    """The saved command a run was made from: its first command's that names one."""
    saved = next((c for c in run.commands() if c.saved_command), None)
    return (saved.saved_command, saved.saved_hash) if saved is not None else ("", "")


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, so a migration can run inside our own transaction."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending


def _ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Fixed width (always microseconds) so text order is time order.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _state(text: str) -> RunState:
    try:
        return RunState(text)
    except ValueError:  # written by a newer fleetrun
        return RunState.UNKNOWN


def _run_record(
    row: tuple[Any, ...], summary: dict[str, int], machines: tuple[MachineRecord, ...]
) -> RunRecord:
    (run_id, created, ended, parent, fleet, target, stop, commands, pid, host, status,
     saved_command, saved_hash, source_group) = row
    return RunRecord(
        run_id=run_id, created=datetime.fromisoformat(created), ended=_dt(ended),
        parent_run_id=parent, source_group=source_group, fleet=fleet, target=target,
        stop_reason=stop,
        commands=tuple(json.loads(commands)), pid=pid, host=host, status=cast(RunStatus, status),
        summary=summary, machine_count=sum(summary.values()), machines=machines,
        saved_command=saved_command, saved_hash=saved_hash,
    )  # fmt: skip


def _machine_record(row: tuple[Any, ...]) -> MachineRecord:
    (mid, name, kind, os_, location, subscription, tags, index, state, exit_code,
     started, ended, error, out_bytes, err_bytes, out_file, err_file, masked) = row  # fmt: skip
    return MachineRecord(
        machine_id=mid, name=name, kind=kind, os=os_, location=location,
        subscription=subscription, tags=json.loads(tags), command_index=index,
        state=_state(state), exit_code=exit_code, started=_dt(started), ended=_dt(ended),
        error=error, stdout_bytes=out_bytes, stderr_bytes=err_bytes, stdout_file=out_file,
        stderr_file=err_file, masked=masked,
    )  # fmt: skip


def _start_token(pid: int) -> str | None:
    """When process ``pid`` started (``/proc/<pid>/stat`` field 22), to tell PID reuse.

    Returns None when no such live process exists, "" when it exists but the start
    time cannot be read (no /proc).
    """
    if pid <= 0:
        return None  # os.kill(0 or -1, 0) would probe whole process groups
    if sys.platform == "win32":
        return ""  # there os.kill(pid, 0) would terminate it; assume it lives
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None
        try:  # no /proc (macOS, BSD): existence is all we can know
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields and fields[0] in ("Z", "X"):
        return None  # killed, just not reaped yet
    return fields[19] if len(fields) > 19 else ""


def _owner_alive(pid: int, recorded_token: str) -> bool:
    token = _start_token(pid)
    if token is None:
        return False
    return not (recorded_token and token and token != recorded_token)
