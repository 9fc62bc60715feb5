"""The journal: schema, round trips, lookups, crash recovery, secrets and the async writer."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.backends.base import IfMissing
from core.events import (
    Event,
    Finished,
    MachineEvent,
    OutputAppended,
    RunFinished,
    RunStarted,
    StateChanged,
)
from core.journal_store import (
    INTERRUPTED_ERROR,
    MIGRATIONS,
    Journal,
    JournalError,
    MachineProgress,
    MachineRecord,
    RunRecord,
)
from core.journal_writer import JournalWriter
from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    MachineKind,
    MachineRun,
    OsType,
    Parameter,
    Run,
    RunState,
    Stream,
)
from core.runner import RunSession
from tests.fakes import FakeBackend, Scenario, machines

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
LINUX = Command(CommandId.SHELL, "uname -a", parameters=(Parameter("A", "1"),), timeout=60)
WINDOWS = Command(CommandId.POWERSHELL, "Get-Date", run_as_user="admin")


def machine(i: int, os_type: OsType = OsType.LINUX) -> Machine:
    return Machine(
        id=f"/subscriptions/s1/vm-{i}",
        name=f"vm-{i}",
        kind=MachineKind.VM,
        os=os_type,
        location="westeurope",
        subscription="s1",
        tags={"env": "prod", "n": str(i)},
    )


def make_run(run_id: str, count: int = 4, *, created: datetime = T0, pid: int | None = None) -> Run:
    """Half Linux, half Windows machines, each with its OS's command."""
    runs: dict[str, MachineRun] = {}
    for i in range(count):
        os_type = OsType.LINUX if i % 2 == 0 else OsType.WINDOWS
        m = machine(i, os_type)
        runs[m.id] = MachineRun(m, LINUX if os_type is OsType.LINUX else WINDOWS)
    run = Run(run_id=run_id, machines=runs, created=created, fleet="prod", target="env:prod")
    if pid is not None:
        run.pid = pid
    return run


def nth(run: Run, i: int) -> MachineRun:
    return list(run.machines.values())[i]


def finish(mr: MachineRun, state: RunState, exit_code: int | None, error: str = "") -> None:
    mr.state, mr.exit_code, mr.error = state, exit_code, error
    mr.started = mr.started or T0 + timedelta(seconds=1)
    mr.ended = T0 + timedelta(seconds=5, microseconds=250)


def assert_same(rec: MachineRecord, mr: MachineRun) -> None:
    m = mr.machine
    assert (rec.machine_id, rec.name, rec.kind, rec.os) == (m.id, m.name, m.kind.value, m.os.value)
    assert (rec.location, rec.subscription, rec.tags) == (m.location, m.subscription, dict(m.tags))
    assert (rec.state, rec.exit_code, rec.error) == (mr.state, mr.exit_code, mr.error)
    assert (rec.started, rec.ended) == (mr.started, mr.ended)
    assert (rec.stdout_bytes, rec.stderr_bytes) == (mr.stdout_bytes, mr.stderr_bytes)
    assert (rec.stdout_file, rec.stderr_file) == (mr.stdout_file, mr.stderr_file)


def assert_matches_run(rec: RunRecord, run: Run) -> None:
    assert (rec.run_id, rec.created, rec.ended) == (run.run_id, run.created, run.ended)
    assert (rec.fleet, rec.target, rec.stop_reason) == (run.fleet, run.target, run.stop_reason)
    assert [m.machine_id for m in rec.machines] == list(run.machines)
    for m in rec.machines:
        mr = run.machines[m.machine_id]
        assert_same(m, mr)
        assert rec.command_for(m) == mr.command.redacted()
    assert rec.summary == run.summary() and rec.machine_count == len(run.machines)


def dead_pid() -> int:
    """A pid that existed and is gone (reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def journal(tmp_path: Path) -> Iterable[Journal]:
    with Journal(tmp_path / "db" / "journal.sqlite3") as j:
        yield j


# -- schema ---------------------------------------------------------------------------------


def test_schema_is_versioned_in_wal_mode_and_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    Journal(path).close()  # reopening applies nothing twice
    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) >= 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "machine_runs"} <= tables
    conn.close()
    assert path.stat().st_mode & 0o077 == 0


def test_newer_schema_or_garbage_is_a_clear_error(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    Journal(newer).close()
    conn = raw(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(JournalError, match="newer than this fleetrun"):
        Journal(newer)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(garbage)


# -- writing and reading back ---------------------------------------------------------------


def test_round_trip_with_a_linux_and_a_windows_command(journal: Journal) -> None:
    run = make_run("67c2f0a0abc123", 5)
    run.parent_run_id = "67c2e000fff000"
    journal.record_run(run)
    started = journal.get_run(run.run_id)
    assert started.status == "running" and started.ended is None
    assert started.summary == {"Pending": 5}
    assert_matches_run(started, run)

    ok, bad, running, win_ok, skipped = run.machines.values()
    finish(ok, RunState.SUCCEEDED, 0)
    ok.stdout_bytes, ok.stdout_file, ok.stderr_file = 1234, "/runs/x/vm-0.stdout", "/e"
    finish(bad, RunState.FAILED, 3, "exit status=3")
    bad.stderr_bytes = 7
    running.state, running.started = RunState.RUNNING, T0 + timedelta(seconds=2)
    journal.record_machines(run.run_id, [ok, bad, running])
    assert_matches_run(journal.get_run(run.run_id), run)

    finish(running, RunState.TIMED_OUT, -1, "no result within the 60 s timeout")
    finish(win_ok, RunState.SUCCEEDED, 0)
    skipped.state, skipped.error = RunState.SKIPPED, "skipped: NotReady"
    run.ended, run.stop_reason = T0 + timedelta(minutes=1), "error budget spent"
    journal.finish_run(run)

    rec = journal.get_run(run.run_id)
    assert rec.status == "finished" and rec.parent_run_id == "67c2e000fff000"
    assert list(rec.commands) == [LINUX.redacted(), WINDOWS.redacted()]
    assert [m.command_index for m in rec.machines] == [0, 1, 0, 1, 0]
    assert rec.pid == os.getpid() and rec.host
    assert_matches_run(rec, run)


def test_progress_and_end_are_all_or_nothing_and_only_for_recorded_machines(
    journal: Journal,
) -> None:
    run = make_run("67c2f0a0abc123")
    journal.record_run(run)
    first, second = nth(run, 0), nth(run, 1)
    finish(first, RunState.SUCCEEDED, 0)
    stranger = MachineProgress.of(first)._replace(machine_id="not-in-this-run")
    with pytest.raises(JournalError, match="not in the journal"):
        journal.record_progress(run.run_id, [MachineProgress.of(first), stranger])
    with pytest.raises(JournalError, match="not in the journal"):
        journal.end_run("ffffffff000000", datetime.now(UTC), "", [MachineProgress.of(first)])
    rec = journal.get_run(run.run_id)
    assert rec.status == "running"
    assert [m.state for m in rec.machines] == [RunState.PENDING] * 4
    finish(second, RunState.FAILED, 3)
    journal.record_progress(run.run_id, [MachineProgress.of(first)])
    run.ended, run.stop_reason = datetime.now(UTC), "error budget spent"
    journal.end_run(run.run_id, run.ended, run.stop_reason, [MachineProgress.of(second)])
    rec = journal.get_run(run.run_id)
    assert rec.status == "finished" and rec.stop_reason == "error budget spent"
    assert_matches_run(rec, run)

def test_record_machines_is_all_or_nothing(journal: Journal) -> None:
    run = make_run("67c2f0a0abc123")
    journal.record_run(run)
    first, second = nth(run, 0), nth(run, 1)
    finish(first, RunState.SUCCEEDED, 0)
    finish(second, RunState.FAILED, 2**70)  # SQLite cannot store it: the batch fails late
    with pytest.raises(OverflowError):
        journal.record_machines(run.run_id, [first, second])
    rec = journal.get_run(run.run_id)
    assert [m.state for m in rec.machines] == [RunState.PENDING] * 4
    with pytest.raises(JournalError, match="not in the journal"):
        journal.record_machines("ffffffff000000", [first])


def test_list_runs_newest_first_with_summary_and_limit(journal: Journal) -> None:
    runs = [
        make_run(f"67c2f0a{i}000000", 2 + i, created=T0 + timedelta(minutes=i)) for i in range(3)
    ]
    for run in (runs[1], runs[0], runs[2]):
        journal.record_run(run)
    finish(nth(runs[2], 0), RunState.FAILED, 1)
    journal.finish_run(runs[2])

    listed = journal.list_runs()
    assert [r.run_id for r in listed] == [runs[2].run_id, runs[1].run_id, runs[0].run_id]
    assert listed[0].summary == {"Failed": 1, "Pending": 3} and listed[0].machine_count == 4
    assert listed[0].status == "finished" and listed[1].status == "running"
    assert all(r.machines == () for r in listed)
    assert [r.run_id for r in journal.list_runs(limit=2)] == [runs[2].run_id, runs[1].run_id]
    with pytest.raises(ValueError):
        journal.list_runs(limit=0)


def test_get_run_by_id_or_unique_prefix(journal: Journal) -> None:
    for run_id in ("67c2aaaa000001", "67c2aaaa000002", "67c2bbbb000003"):
        journal.record_run(make_run(run_id))
    assert journal.get_run("67c2b").run_id == "67c2bbbb000003"
    assert journal.get_run(" 67c2aaaa000002 ").run_id == "67c2aaaa000002"
    with pytest.raises(JournalError) as ambiguous:
        journal.get_run("67c2a")
    message = str(ambiguous.value)
    assert "'67c2a' matches 2 runs" in message and "give more characters" in message
    assert "67c2aaaa000001" in message and "67c2aaaa000002" in message
    with pytest.raises(JournalError, match="no run matches 'ffff'"):
        journal.get_run("ffff")
    with pytest.raises(JournalError, match="give a run id"):
        journal.get_run("  ")


# -- interrupted runs -------------------------------------------------------------------------


def test_run_of_a_dead_process_reads_back_interrupted(journal: Journal) -> None:
    run = make_run("67c2f0a0abc123", 4, pid=dead_pid())
    journal.record_run(run)
    done, running, _pending, unknown = run.machines.values()
    finish(done, RunState.SUCCEEDED, 0)
    running.state, running.started, running.stdout_bytes = RunState.RUNNING, T0, 42
    running.stdout_file = "/runs/x/vm-1.stdout"
    unknown.state = RunState.UNKNOWN
    journal.record_machines(run.run_id, run.machines.values())

    (listed,) = journal.list_runs()
    assert listed.status == "interrupted"
    assert listed.summary == {"Succeeded": 1, "Unknown": 3}
    rec = journal.get_run(run.run_id)
    kept, *lost = rec.machines
    assert (kept.state, kept.exit_code, kept.error) == (RunState.SUCCEEDED, 0, "")
    assert all(m.state is RunState.UNKNOWN and m.error == INTERRUPTED_ERROR for m in lost)
    assert (lost[0].started, lost[0].stdout_bytes) == (T0, 42)
    assert lost[0].stdout_file == "/runs/x/vm-1.stdout"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_reused_pid_is_not_mistaken_for_the_owner(journal: Journal) -> None:
    run = make_run("67c2f0a0abc123")  # this process: alive
    journal.record_run(run)
    assert journal.get_run(run.run_id).status == "running"
    conn = raw(journal.path)
    conn.execute("UPDATE runs SET pid_start = '1'")  # as if another process had had our pid
    conn.close()
    assert journal.get_run(run.run_id).status == "interrupted"


def test_runs_of_other_hosts_are_left_alone(journal: Journal) -> None:
    run = make_run("67c2f0a0abc123", pid=dead_pid())
    journal.record_run(run)
    conn = raw(journal.path)
    conn.execute("UPDATE runs SET host = 'another-host'")
    conn.close()
    rec = journal.get_run(run.run_id)
    assert rec.status == "running"
    assert {m.state for m in rec.machines} == {RunState.PENDING}


KILL_SCRIPT = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from core.journal_store import Journal
from core.model import Command, CommandId, Machine, MachineKind, MachineRun, OsType, Run, RunState

command = Command(CommandId.SHELL, "sleep 600")
machines = {
    f"m{i}": MachineRun(Machine(f"m{i}", f"m{i}", MachineKind.SSH, OsType.LINUX), command)
    for i in range(3)
}
run = Run(run_id="67c2dead000001", machines=machines)
journal = Journal(Path(sys.argv[1]))
journal.record_run(run)
done, running = machines["m0"], machines["m1"]
done.state, done.exit_code = RunState.SUCCEEDED, 0
done.started = done.ended = datetime.now(UTC)
running.state, running.started, running.stdout_bytes = RunState.RUNNING, datetime.now(UTC), 9
journal.record_machines(run.run_id, [done, running])
print("ready", flush=True)
time.sleep(60)
"""


def test_kill_9_keeps_everything_flushed(tmp_path: Path) -> None:
    script = tmp_path / "victim.py"
    script.write_text(KILL_SCRIPT)
    path = tmp_path / "journal.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The process never closed the database: what it committed is in the WAL only.
    assert Path(f"{path}-wal").stat().st_size > 0

    with Journal(path) as journal:
        rec = journal.get_run("67c2dead")
    assert rec.status == "interrupted"
    done, running, pending = rec.machines
    assert (done.state, done.exit_code, done.error) == (RunState.SUCCEEDED, 0, "")
    assert done.started is not None and done.ended is not None
    for m in (running, pending):
        assert (m.state, m.error) == (RunState.UNKNOWN, INTERRUPTED_ERROR)
    assert running.started is not None and running.stdout_bytes == 9


# -- secrets ----------------------------------------------------------------------------------

PARAM_CANARY = "CANARY-7f3a9c"
PASSWORD_CANARY = "CANARY-PW-51e0b2"


def test_secrets_never_reach_any_database_file(tmp_path: Path) -> None:
    command = Command(
        CommandId.POWERSHELL,
        "Write-Output marker-5d1c $env:TOKEN",
        parameters=(Parameter("Region", "eu"), Parameter("TOKEN", PARAM_CANARY, protected=True)),
        run_as_user="svc",
        run_as_password=PASSWORD_CANARY,
    )
    m = machine(1, OsType.WINDOWS)
    run = Run(run_id="67c2f0a0abc123", machines={m.id: MachineRun(m, command)})
    directory = tmp_path / "journal"
    journal = Journal(directory / "journal.sqlite3")
    journal.record_run(run)
    finish(nth(run, 0), RunState.SUCCEEDED, 0)
    journal.record_machines(run.run_id, run.machines.values())
    run.ended = T0
    journal.finish_run(run)
    (stored,) = journal.get_run(run.run_id).commands
    assert stored == command.redacted() and stored["run_as_password"] == "***"

    def scan() -> None:
        files = [p for p in directory.iterdir() if p.is_file()]
        everything = b"".join(p.read_bytes() for p in files)
        assert b"marker-5d1c" in everything  # the scan does see what was written
        for canary in (PARAM_CANARY, PASSWORD_CANARY):
            for encoded in (canary.encode(), canary.encode("utf-16-le")):
                assert encoded not in everything

    scan()  # while open: the data is in the -wal file
    journal.close()
    scan()  # after the checkpoint on close: in the main file


# -- the writer -------------------------------------------------------------------------------


async def engine_events(run: Run, journal: Journal) -> AsyncIterator[Event]:
    """What the engine publishes, mutating the run first, as the engine does."""
    yield RunStarted(run.run_id, len(run.machines))
    for mr in run.machines.values():
        mr.state, mr.started = RunState.RUNNING, datetime.now(UTC)
        yield StateChanged(mr.machine_id, RunState.RUNNING, at=mr.started)
    for mr in run.machines.values():
        mr.stdout_bytes += 19
        yield OutputAppended(mr.machine_id, Stream.STDOUT, 0, b"PAYLOAD-NOT-IN-SQL\n")
    await asyncio.sleep(0.35)  # past both flush delays: the journal has caught up mid-run
    mid = journal.get_run(run.run_id)
    assert mid.status == "running"
    assert {(m.state, m.stdout_bytes) for m in mid.machines} == {(RunState.RUNNING, 19)}
    for i, mr in enumerate(run.machines.values()):
        mr.state = RunState.SUCCEEDED if i % 3 else RunState.FAILED
        mr.exit_code = 0 if i % 3 else 1
        mr.ended = datetime.now(UTC)
        yield Finished(mr.machine_id, mr.state, mr.exit_code, mr.started, mr.ended)
    run.ended, run.stop_reason = datetime.now(UTC), "error budget spent"
    yield RunFinished(run.run_id, run.summary(), run.stop_reason)


async def test_writer_follows_an_event_stream_to_the_final_state(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    run = make_run("67c2f0a0abc123", 6)
    await JournalWriter(journal, run).consume(engine_events(run, journal))
    rec = journal.get_run(run.run_id)
    assert rec.status == "finished"
    assert_matches_run(rec, run)
    journal.close()
    assert not any(b"PAYLOAD-NOT-IN-SQL" in p.read_bytes() for p in tmp_path.iterdir())


async def test_writer_records_an_early_end_as_still_running(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    run = make_run("67c2f0a0abc123", 2)

    async def events() -> AsyncIterator[Event]:
        yield RunStarted(run.run_id, 2)
        finish(nth(run, 0), RunState.SUCCEEDED, 0)
        yield Finished(nth(run, 0).machine_id, RunState.SUCCEEDED, 0)

    await JournalWriter(journal, run).consume(events())
    rec = journal.get_run(run.run_id)
    assert rec.status == "running"  # this process still owns it
    assert [m.state for m in rec.machines] == [RunState.SUCCEEDED, RunState.PENDING]


async def test_writer_retries_a_failed_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    run = make_run("67c2f0a0abc123", 3)
    real = journal.record_progress
    failures: list[int] = []

    def flaky(run_id: str, progress: Sequence[MachineProgress]) -> None:
        if not failures:
            failures.append(1)
            raise sqlite3.OperationalError("disk I/O error")
        real(run_id, progress)

    monkeypatch.setattr(journal, "record_progress", flaky)
    writer = JournalWriter(journal, run)

    def last_error() -> Exception | None:
        return writer.error

    async def events() -> AsyncIterator[Event]:
        yield RunStarted(run.run_id, 3)
        finish(nth(run, 1), RunState.SUCCEEDED, 0)
        yield Finished(nth(run, 1).machine_id, RunState.SUCCEEDED, 0)
        await asyncio.sleep(0.1)
        assert isinstance(last_error(), sqlite3.OperationalError)
        await asyncio.sleep(0.3)  # the retry
        assert last_error() is None
        assert journal.get_run(run.run_id).machines[1].state is RunState.SUCCEEDED

    await writer.consume(events())
    assert failures == [1]


async def test_writer_keeps_the_loop_responsive_for_5000_machines(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    ms = {f"m{i:05d}": MachineRun(Machine(f"m{i:05d}", f"host-{i}", MachineKind.SSH,
                                          OsType.LINUX, tags={"rack": str(i % 40)}), LINUX)
          for i in range(5000)}  # fmt: skip
    run = Run(run_id="67c2f0a0abc123", machines=ms)
    batches: list[int] = []
    real = journal.record_progress

    def counting(run_id: str, progress: Sequence[MachineProgress]) -> None:
        batches.append(len(progress))
        real(run_id, progress)

    journal.record_progress = counting  # type: ignore[method-assign]

    async def events() -> AsyncIterator[Event]:
        yield RunStarted(run.run_id, len(ms))
        for n, mr in enumerate(ms.values()):
            mr.state, mr.started = RunState.RUNNING, datetime.now(UTC)
            yield StateChanged(mr.machine_id, RunState.RUNNING)
            mr.stdout_bytes = 3
            yield OutputAppended(mr.machine_id, Stream.STDOUT, 0, b"ok\n")
            if n % 50 == 0:
                await asyncio.sleep(0)  # the engine yields to its backends now and then
        for n, mr in enumerate(ms.values()):
            finish(mr, RunState.SUCCEEDED, 0)
            yield Finished(mr.machine_id, RunState.SUCCEEDED, 0)
            if n % 50 == 0:
                await asyncio.sleep(0)
        run.ended = datetime.now(UTC)
        yield RunFinished(run.run_id, run.summary())

    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await JournalWriter(journal, run).consume(events())
    tick.cancel()
    assert gaps and max(gaps) < 0.5, max(gaps)
    assert batches and max(batches) <= 500
    rec = journal.get_run(run.run_id)
    assert rec.status == "finished" and rec.summary == {"Succeeded": 5000}
    assert {m.stdout_bytes for m in rec.machines} == {3}


async def test_run_session_leaves_the_journal_matching_the_run(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    backend = FakeBackend(default=Scenario(stdout=b"hello\n" * 100, chunks=5),
                          scenarios={"m002": Scenario(exit_code=4, stderr=b"boom\n")})  # fmt: skip
    session = RunSession.plan([(m, LINUX) for m in machines(8)], lambda _m: backend,
                              journal=journal, runs_root=tmp_path / "runs")  # fmt: skip
    run = await session.execute()
    rec = journal.get_run(run.run_id)
    assert rec.status == "finished"
    assert_matches_run(rec, run)
    assert rec.summary == {"Succeeded": 7, "Failed": 1}
    assert all(m.stdout_file.endswith(".stdout") for m in rec.machines)


def test_a_journal_of_the_first_schema_gains_the_masked_counts(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with Journal(path) as journal:
        run = make_run("r-old", count=2)
        journal.record_run(run)
        assert [m.masked for m in journal.get_run("r-old").machines] == [0, 0]
        first = next(iter(run.machines.values()))
        first.masked = 3
        journal.record_machines("r-old", [first])
        assert [m.masked for m in journal.get_run("r-old").machines] == [3, 0]


class _CleaningBackend:
    """Runs outlive fleetrun (it can re-attach), and its cleanup erases the service's record:
    it notes what the journal held for the machine at the moment it cleans up."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.at_cleanup: dict[str, str] = {}

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: Health(HealthStatus.READY) for m in machines}

    async def run(self, machine: Machine, command: Command, *, run_id: str
                  ) -> AsyncIterator[MachineEvent]:
        try:
            yield StateChanged(machine.id, RunState.RUNNING)
            yield Finished(machine.id, RunState.SUCCEEDED, 0)
        finally:  # the DELETE of a finished run command, in the managed backends
            kept = {m.machine_id: m.state for m in self.journal.get_run(run_id).machines}
            self.at_cleanup[machine.id] = kept[machine.id].value

    def attach(self, machine: Machine, command: Command, *, run_id: str,
               if_missing: IfMissing = IfMissing.REPORT) -> AsyncIterator[MachineEvent]:
        return self.run(machine, command, run_id=run_id)

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


async def test_a_machines_end_is_in_the_journal_before_its_backend_cleans_up(
        tmp_path: Path) -> None:
    # Else a process killed between the two leaves attach a run command that is gone and no
    # result: 'result lost' (seen under load in tests/cli/test_attach_unsent.py).
    journal = Journal(tmp_path / "journal.sqlite3")
    backend = _CleaningBackend(journal)
    session = RunSession.plan([(m, LINUX) for m in machines(20)], lambda _m: backend,
                              journal=journal, runs_root=tmp_path / "runs")
    await session.execute()
    assert backend.at_cleanup == {m.id: "Succeeded" for m in machines(20)}


class _KeptCleaningBackend(_CleaningBackend):
    """Holds on to its runs' generators, so only fleetrun closing them cleans up (never the
    garbage collector, which would hide a close that was skipped)."""

    def __init__(self, journal: Journal) -> None:
        super().__init__(journal)
        self.kept: list[AsyncIterator[MachineEvent]] = []

    def run(self, machine: Machine, command: Command, *, run_id: str
            ) -> AsyncIterator[MachineEvent]:
        self.kept.append(events := self._run(machine))
        return events

    async def _run(self, machine: Machine) -> AsyncIterator[MachineEvent]:
        try:
            yield StateChanged(machine.id, RunState.RUNNING)
            yield Finished(machine.id, RunState.SUCCEEDED, 0)
        finally:
            self.at_cleanup[machine.id] = "cleaned up"


async def test_a_backend_still_cleans_up_when_the_journal_cannot_take_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A run command left behind takes one of a VM's 25 slots: a failed persist must not
    # skip the DELETE (it did, and a run command stayed on the machine after attach).
    journal = Journal(tmp_path / "journal.sqlite3")
    backend = _KeptCleaningBackend(journal)
    session = RunSession.plan([(m, LINUX) for m in machines(3)], lambda _m: backend,
                              journal=journal, runs_root=tmp_path / "runs")

    async def fails(_writer: JournalWriter, _machine: MachineId) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(JournalWriter, "persist", fails)
    run = await session.execute()
    assert backend.at_cleanup == {m.id: "cleaned up" for m in machines(3)}
    assert {mr.state for mr in run.machines.values()} == {RunState.SUCCEEDED}
