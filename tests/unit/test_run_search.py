"""Finding past runs: the saved command each run records, the search, the date bounds, and a
journal of the previous schema opening with them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.fanout import plan_run
from core.journal_store import MIGRATIONS, Journal
from core.library import CommandParameter, SavedCommand
from core.model import Command, CommandId, Machine, MachineKind, OsType, RunState
from core.run_record import listed_run_record
from core.run_search import RunFilter, RunFilterError, last_days, parse_bound, parse_search
from core.runner import command_from_record

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DISK = SavedCommand("disk-usage", scripts={CommandId.SHELL: "df -h /\n"},
                    parameters=(CommandParameter("MOUNT", default="/"),))


def machine(name: str) -> Machine:
    return Machine(id=f"/m/{name}", name=name, kind=MachineKind.SSH, os=OsType.LINUX)


def record(journal: Journal, run_id: str, command: Command, names: list[str], *,
           days_ago: float, state: RunState = RunState.SUCCEEDED, target: str = "") -> None:
    run = plan_run([(machine(n), command) for n in names], fleet="prod", target=target,
                   run_id=run_id)
    run.created = NOW - timedelta(days=days_ago)
    for mr in run.machines.values():
        mr.state, mr.exit_code = state, 0 if state is RunState.SUCCEEDED else 1
    run.ended = run.created + timedelta(seconds=5)
    journal.finish_run(run)


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    journal = Journal(tmp_path / "journal.sqlite3")
    record(journal, "r-disk", DISK.command_for(CommandId.SHELL, {}), ["web-01", "web-02"],
           days_ago=0.1)
    record(journal, "r-adhoc", Command(CommandId.SHELL, "systemctl restart NGINX\n"),
           ["db-01"], days_ago=3, state=RunState.FAILED, target="tag:role=db")
    record(journal, "r-old", Command(CommandId.SHELL, "uptime\n"), ["web-01"], days_ago=30)
    return journal


def found(journal: Journal, where: RunFilter) -> list[str]:
    return [r.run_id for r in journal.list_runs(where=where)]


def test_a_run_of_a_saved_command_records_its_name_and_hash_an_adhoc_one_none(
        journal: Journal) -> None:
    disk, adhoc = journal.get_run("r-disk"), journal.get_run("r-adhoc")
    assert (disk.saved_command, disk.saved_hash) == ("disk-usage", DISK.content_hash())
    assert disk.saved_hash.startswith("sha256:") and len(disk.saved_hash) == 7 + 12
    assert disk.saved_label() == f"disk-usage #{DISK.content_hash()[7:13]}"
    assert (adhoc.saved_command, adhoc.saved_hash, adhoc.saved_label()) == ("", "", "")
    # The listing (history -o json) and a rerun from the journal keep it too.
    assert listed_run_record(disk)["saved_command"] == {"name": "disk-usage",
                                                        "hash": DISK.content_hash()}
    assert listed_run_record(adhoc)["saved_command"] is None
    assert command_from_record(disk.commands[0]).saved_command == "disk-usage"


def test_the_hash_changes_with_what_runs_not_with_the_description() -> None:
    edited = SavedCommand("disk-usage", scripts={CommandId.SHELL: "df -h\n"},
                          parameters=DISK.parameters)
    described = SavedCommand("disk-usage", description="how full", tags=("disk",),
                             scripts=DISK.scripts, parameters=DISK.parameters)
    assert edited.content_hash() != DISK.content_hash() == described.content_hash()


@pytest.mark.parametrize(("text", "expected"), [
    ("DISK-usage", ["r-disk"]),          # the saved command's name, any case
    ("nginx", ["r-adhoc"]),              # script text
    ("role=db", ["r-adhoc"]),            # target
    ("failed", ["r-adhoc"]),             # a machine's state
    ("web-01", ["r-disk", "r-old"]),     # a machine's name
    ("100%_", []),                       # LIKE's wildcards are taken literally
    ("", ["r-disk", "r-adhoc", "r-old"]),
])
def test_search_finds_runs_by_what_people_remember(journal: Journal, text: str,
                                                   expected: list[str]) -> None:
    assert found(journal, RunFilter(text=text)) == expected
    assert journal.count_runs(RunFilter(text=text)) == len(expected)


def test_dates_bound_the_runs(journal: Journal) -> None:
    assert found(journal, last_days(1, NOW)) == ["r-disk"]
    assert found(journal, last_days(7, NOW)) == ["r-disk", "r-adhoc"]
    week = parse_search("since:7d until:1d web", NOW)
    assert found(journal, week) == []
    assert found(journal, RunFilter(since=NOW - timedelta(days=40),
                                    until=NOW - timedelta(days=2))) == ["r-adhoc", "r-old"]


def test_bounds_as_typed() -> None:
    local = NOW.astimezone()
    day_start = datetime.combine(local.date(), datetime.min.time()).astimezone()
    assert parse_bound("today", field="--since", now=NOW) == day_start
    assert parse_bound("today", field="--until", now=NOW, end=True) == day_start + timedelta(1)
    assert parse_bound("12h", field="--since", now=NOW) == NOW - timedelta(hours=12)
    assert parse_bound("2026-12-01", field="--until", now=NOW, end=True) == \
        datetime(2026, 12, 2).astimezone()
    searched = parse_search("disk  since:2026-12-01 usage", NOW)
    assert (searched.text, searched.since) == ("disk usage", datetime(2026, 12, 1).astimezone())


def test_a_bound_that_is_no_date_names_the_field_and_the_rule() -> None:
    with pytest.raises(RunFilterError, match=r"^--since: 'last tuesday' is not a date; use "):
        parse_bound("last tuesday", field="--since", now=NOW)
    with pytest.raises(RunFilterError, match=r"^until: "):
        parse_search("until:soon", NOW)


def test_a_journal_of_the_previous_schema_opens_and_records_saved_commands(
        tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    old = sqlite3.connect(path)
    for script in MIGRATIONS[:-1]:
        old.executescript(script)
    old.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")
    old.execute("INSERT INTO runs (run_id, created, pid, status, commands_json) VALUES "
                "('r-before', '2026-01-01T00:00:00.000000+00:00', 1, 'finished', "
                "'[{\"command_id\": \"RunShellScript\", \"script\": \"uptime\"}]')")
    old.commit()
    old.close()
    with Journal(path) as journal:
        before = journal.get_run("r-before")
        assert (before.saved_command, before.saved_hash) == ("", "")
        assert found(journal, RunFilter(text="uptime")) == ["r-before"]
        record(journal, "r-after", DISK.command_for(CommandId.SHELL, {}), ["web-01"],
               days_ago=0)
        assert found(journal, RunFilter(text="disk-usage")) == ["r-after"]
