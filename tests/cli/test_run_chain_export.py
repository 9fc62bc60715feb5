"""The chain in what a run is written out as: a rerun made from a parent's output group, with
a saved command, carries the saved command's name and hash, the parent run and the group
(with the line that set it apart) in the JSON export, the Markdown report, ``history -o
json`` and ``show``; each is read back from the file or the output."""

from __future__ import annotations

import json
from pathlib import Path

from core.journal_store import Journal
from core.model import Command, CommandId
from core.run_export import write_view
from core.run_view import RunView
from core.runner import RunSession
from tests.cli.conftest import CliRunner, Home
from tests.fakes import FakeBackend, Scenario, machines
from tests.run_record_schema import validate

SOURCE = "group 2 (2 machines, exit 1): disk /dev/sda1 is 100% full"
SAVED = Command(CommandId.SHELL, "df -h /", saved_command="disk-usage",
                saved_hash="sha256:0123456789ab")


async def recorded_rerun(data: Path) -> tuple[str, str]:
    """A parent run and a rerun of its group 2 in ``data``'s journal: their ids."""
    journal = Journal(data / "journal.sqlite3")
    backend = FakeBackend(default=Scenario(stdout=b"/dev/sda1 100% /\n", exit_code=1))
    parent = RunSession.plan([(m, SAVED) for m in machines(3)], lambda _m: backend,
                             fleet="sandbox", journal=journal, runs_root=data / "runs")
    await parent.execute()
    rerun = RunSession.plan([(m, SAVED) for m in machines(2)], lambda _m: backend,
                            fleet="sandbox", parent_run_id=parent.run.run_id,
                            source_group=SOURCE, journal=journal, runs_root=data / "runs")
    await rerun.execute()
    return parent.run.run_id, rerun.run.run_id


def assert_chain(doc: dict[str, object], parent_id: str) -> None:
    assert doc["parent_run_id"] == parent_id
    assert doc["source_group"] == SOURCE
    assert doc["saved_command"] == {"name": "disk-usage", "hash": "sha256:0123456789ab"}


async def test_the_json_export_and_the_report_carry_the_chain(tmp_path: Path) -> None:
    parent_id, rerun_id = await recorded_rerun(tmp_path)
    record = Journal(tmp_path / "journal.sqlite3").get_run(rerun_id)
    view = RunView.from_journal(record, runs_root=tmp_path / "runs")
    exported = json.loads(write_view(view, "json", tmp_path / "rerun.json").read_text())
    validate(exported)
    assert_chain(exported, parent_id)

    report = write_view(view, "md", tmp_path / "rerun.md").read_text()
    assert f"- **Rerun of:** {parent_id}" in report
    assert "- **Chosen from:** group 2 (2 machines, exit 1): disk /dev/sda1 is 100% full" \
        in report
    assert "- **Saved command:** `disk-usage` (`sha256:0123456789ab`)" in report


async def test_a_run_that_is_no_rerun_says_so_with_empty_fields(tmp_path: Path) -> None:
    parent_id, _ = await recorded_rerun(tmp_path)
    record = Journal(tmp_path / "journal.sqlite3").get_run(parent_id)
    view = RunView.from_journal(record, runs_root=tmp_path / "runs")
    doc = json.loads(write_view(view, "json", tmp_path / "parent.json").read_text())
    validate(doc)
    assert doc["parent_run_id"] == "" and doc["source_group"] == ""
    report = write_view(view, "md", tmp_path / "parent.md").read_text()
    assert "Rerun of" not in report and "Chosen from" not in report


async def test_the_cli_history_show_and_export_carry_the_chain(
        cli: CliRunner, home: Home, tmp_path: Path) -> None:
    parent_id, rerun_id = await recorded_rerun(home.data)

    listed = json.loads(cli("history", "-o", "json").stdout)
    for doc in listed:
        validate(doc, "listed_run")
    by_id = {doc["run_id"]: doc for doc in listed}
    assert_chain(by_id[rerun_id], parent_id)

    out = tmp_path / "export.json"
    assert cli("export", rerun_id, "--format", "json", "-o", str(out)).returncode == 0
    assert_chain(json.loads(out.read_text()), parent_id)

    shown = cli("show", rerun_id, env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert f"from run {parent_id}, {SOURCE}" in shown.stdout
    assert "saved command disk-usage (sha256:0123456789ab)" in shown.stdout
