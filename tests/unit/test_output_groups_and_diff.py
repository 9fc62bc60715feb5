"""Grouping identical outputs of a run read back from history, and diffing two outputs."""

from __future__ import annotations

import threading
from pathlib import Path

from core.journal_store import Journal
from core.model import Command, CommandId, Stream
from core.output_diff import diff_files
from core.runner import RunSession
from tests.fakes import FakeBackend, Scenario, machines

SHELL = Command(CommandId.SHELL, "report", timeout=0)


def group_shape(session: RunSession) -> list[tuple[int | None, frozenset[str]]]:
    return [(g.exit_code, frozenset(g.machine_ids))
            for g in session.output.groups(session.run.machines.values())]


async def test_a_recorded_run_groups_like_the_live_one(tmp_path: Path) -> None:
    # Same sizes, same exit codes, same last 4 KB: only the whole output tells them apart.
    shared_end = b"x" * 5000
    backend = FakeBackend(scenarios={
        "m001": Scenario(stdout=b"A" + shared_end),
        "m002": Scenario(stdout=b"B" + shared_end, chunks=3),
        "m003": Scenario(stdout=b"B" + shared_end, stderr=b"warn\n"),
    }, default=Scenario(stdout=b"A" + shared_end, chunks=2))
    journal = Journal(tmp_path / "journal.sqlite3")
    live = RunSession.plan([(m, SHELL) for m in machines(5)], lambda _m: backend,
                           journal=journal, runs_root=tmp_path)
    await live.execute()
    expected = [(0, frozenset({"m000", "m001", "m004"})), (0, frozenset({"m002"})),
                (0, frozenset({"m003"}))]
    assert group_shape(live) == expected

    recorded = RunSession.recorded(journal.get_run(live.run.run_id), runs_root=tmp_path)
    # Opening reads only tails; the files are read once, when grouping is first asked for.
    assert recorded.output.pending_digests() == 6
    threads = [threading.Thread(target=recorded.output.complete_digests) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorded.output.pending_digests() == 0
    assert group_shape(recorded) == expected
    assert recorded.output.tail("m002", Stream.STDOUT) == (b"B" + shared_end)[-4096:]


async def test_groups_of_a_recorded_run_need_no_explicit_completion(tmp_path: Path) -> None:
    backend = FakeBackend(scenarios={"m001": Scenario(stdout=b"other\n")})
    journal = Journal(tmp_path / "journal.sqlite3")
    live = RunSession.plan([(m, SHELL) for m in machines(3)], lambda _m: backend,
                           journal=journal, runs_root=tmp_path)
    await live.execute()
    recorded = RunSession.recorded(journal.get_run(live.run.run_id), runs_root=tmp_path)
    assert group_shape(recorded) == [(0, frozenset({"m000", "m002"})), (0, frozenset({"m001"}))]


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def numbered(count: int, changes: dict[int, str] | None = None) -> bytes:
    lines = [f"line {i}\n" for i in range(1, count + 1)]
    for number, text in (changes or {}).items():
        lines[number - 1] = text + "\n"
    return "".join(lines).encode()


def test_identical_files_have_no_diff(tmp_path: Path) -> None:
    a = write(tmp_path / "a", numbered(50))
    diff = diff_files(a, write(tmp_path / "b", numbered(50)))
    assert diff.identical and diff.lines == [] and not diff.capped


def test_a_changed_line_shows_with_context_and_its_line_number(tmp_path: Path) -> None:
    a = write(tmp_path / "a", numbered(100))
    b = write(tmp_path / "b", numbered(100, {50: "line fifty"}))
    diff = diff_files(a, b, labels=("web-1 stdout", "web-7 stdout"))
    assert diff.lines == [
        "--- web-1 stdout", "+++ web-7 stdout", "@@ -47,7 +47,7 @@",
        " line 47", " line 48", " line 49", "-line 50", "+line fifty",
        " line 51", " line 52", " line 53",
    ]
    assert not diff.capped
    skipped = len(numbered(46))
    assert diff.notes == [f"the first 46 lines ({skipped} bytes) are identical and not shown"]


def test_a_missing_file_is_empty_output(tmp_path: Path) -> None:
    b = write(tmp_path / "b", b"only here\n")
    diff = diff_files(str(tmp_path / "never-written"), b)
    assert diff.lines == ["--- reference", "+++ other", "@@ -0,0 +1 @@", "+only here"]


def test_big_outputs_skip_their_common_start_and_cap_the_rest(tmp_path: Path) -> None:
    # 8 MB alike, then one line differs, then 1 MB alike again.
    progress = b"progress " + b"." * 70 + b"\n"
    before, after = progress * 100_000, progress * 13_000
    a = write(tmp_path / "a", before + b"result: ok\n" + after)
    b = write(tmp_path / "b", before + b"result: FAILED\n" + after)
    diff = diff_files(a, b, cap=64 * 1024)
    assert diff.capped
    assert [line for line in diff.lines if line[:1] in "+-@"] == [
        "--- reference", "+++ other", "@@ -99998,7 +99998,7 @@",
        "-result: ok", "+result: FAILED"]
    assert diff.notes[0] == (f"the first 99,997 lines ({len(progress) * 99_997:,} bytes) "
                             "are identical and not shown")
    assert diff.notes[1].startswith("only 65,536 bytes of each output were diffed from there")


def test_outputs_identical_past_the_scan_limit_say_so(tmp_path: Path) -> None:
    a = write(tmp_path / "a", b"same\n" * 100_000 + b"a\n")
    b = write(tmp_path / "b", b"same\n" * 100_000 + b"b\n")
    diff = diff_files(a, b, scan_limit=128 * 1024)
    assert diff.capped and diff.lines == [] and not diff.identical
    assert "the rest was not compared" in diff.notes[0]
