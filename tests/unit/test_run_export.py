"""Run exports (JSON, CSV, Markdown report): what they hold, and that secrets stay out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from core.journal_store import Journal
from core.model import Command, CommandId, Parameter, RunState
from core.run_export import ExportError, default_path, parse_format, render, write
from core.runner import RunSession
from tests.fakes import FakeBackend, Scenario, machines

CANARY = "CANARY-7f3e1c2a-secret"

COMMAND = Command(
    CommandId.SHELL, 'echo "checking disk"; df -h /',
    parameters=(Parameter("REGION", "westeurope"), Parameter("TOKEN", CANARY, protected=True)),
    timeout=60,
)


async def finished_session(tmp_path: Path, journal: Journal | None = None, *,
                           echo_secret: bool = True) -> RunSession:
    """Five machines: three print the same, one fails (echoing the secret), one differs."""
    token = CANARY if echo_secret else "abc"
    backend = FakeBackend(
        scenarios={
            "m003": Scenario(stdout=b"checking disk\n/dev/sda1 100% /\n",
                             stderr=f"token {token} rejected\n".encode(), exit_code=2),
            "m004": Scenario(stdout=b"checking disk\n/dev/sda1 81% /\n"),
        },
        default=Scenario(stdout=b"checking disk\n/dev/sda1 42% /\n"),
    )
    session = RunSession.plan([(m, COMMAND) for m in machines(5)], lambda _m: backend,
                              fleet="sandbox", target="os:linux", journal=journal,
                              runs_root=tmp_path / "runs")
    await session.execute()
    return session


async def test_json_holds_the_run_its_groups_and_every_machine(tmp_path: Path) -> None:
    session = await finished_session(tmp_path)
    doc = json.loads(render(session.run, session.output, "json"))

    assert doc["run_id"] == session.run.run_id and doc["status"] == "finished"
    assert doc["fleet"] == "sandbox" and doc["target"] == "os:linux"
    assert doc["summary"] == {"Succeeded": 4, "Failed": 1}
    assert doc["command"]["parameters"] == [
        {"name": "REGION", "value": "westeurope", "protected": False},
        {"name": "TOKEN", "value": "***", "protected": True},
    ]
    assert [(g["size"], g["exit_code"], g["machines"]) for g in doc["groups"]] == [
        (3, 0, ["m000", "m001", "m002"]), (1, 0, ["m004"]), (1, 2, ["m003"])]
    by_name = {m["machine"]: m for m in doc["machines"]}
    assert list(by_name) == ["m000", "m001", "m002", "m003", "m004"]
    failed = by_name["m003"]
    assert failed["state"] == "Failed" and failed["exit_code"] == 2
    assert failed["error"] == "exit status=2"
    assert failed["group"] == 3 and failed["kind"] == "local"
    assert failed["stdout"] == "checking disk\n/dev/sda1 100% /\n"
    assert failed["stderr"] == "token *** rejected\n"
    assert failed["stdout_bytes"] == len(b"checking disk\n/dev/sda1 100% /\n")
    assert failed["stderr_bytes"] == len("token *** rejected\n")  # as stored: masked
    assert failed["masked"] == 1
    assert failed["elapsed_seconds"] is not None and failed["elapsed_seconds"] >= 0


async def test_csv_has_one_row_per_machine(tmp_path: Path) -> None:
    session = await finished_session(tmp_path)
    rows = list(csv.DictReader(io.StringIO(render(session.run, session.output, "csv"))))

    assert [r["machine"] for r in rows] == ["m000", "m001", "m002", "m003", "m004"]
    failed = rows[3]
    assert failed["state"] == "Failed" and failed["exit_code"] == "2"
    assert failed["group"] == "3" and failed["stdout_bytes"] == "31"
    assert failed["stdout_last_line"] == "/dev/sda1 100% /"
    assert failed["stderr_last_line"] == "token *** rejected"
    assert rows[0]["exit_code"] == "0" and rows[0]["error"] == ""


async def test_markdown_report_has_what_ran_the_groups_and_the_failures(
        tmp_path: Path) -> None:
    session = await finished_session(tmp_path)
    report = render(session.run, session.output, "md")

    assert report.startswith(f"# fleetrun run {session.run.run_id}: 1 failed of 5 machines")
    assert "df -h /" in report and "| TOKEN | `***` |" in report
    assert "| Succeeded | 4 |" in report and "| Failed | 1 |" in report
    assert "### Group 1: 3 machines, exit 0 (3 Succeeded)" in report
    assert "Machines: m000, m001, m002" in report
    assert "### Group 3: 1 machine, exit 2 (1 Failed)" in report
    assert "/dev/sda1 100% /" in report and "/dev/sda1 81% /" in report
    failures = report.split("## Machines that did not succeed")[1]
    assert "| m003 | Failed | 2 | 3 | exit status=2 | token *** rejected |" in failures
    assert "m000" not in failures


async def test_no_export_holds_the_protected_value(tmp_path: Path) -> None:
    session = await finished_session(tmp_path)
    for fmt in ("json", "csv", "md"):
        path = write(session.run, session.output, fmt, tmp_path / f"out.{fmt}")
        assert CANARY not in path.read_text(), fmt
        assert path.stat().st_mode & 0o077 == 0  # outputs are private, so is their export


async def test_a_run_from_history_exports_the_same_groups(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    # The journal never had the secret, so what a machine printed of it cannot be blanked
    # out of a recorded run: these machines print none.
    live = await finished_session(tmp_path, journal, echo_secret=False)
    recorded = RunSession.recorded(journal.get_run(live.run.run_id),
                                   runs_root=tmp_path / "runs")
    live_doc = json.loads(render(live.run, live.output, "json"))
    recorded_doc = json.loads(render(recorded.run, recorded.output, "json"))
    assert recorded_doc["groups"] == live_doc["groups"]
    assert [m["group"] for m in recorded_doc["machines"]] == [1, 1, 1, 3, 2]
    assert recorded_doc["command"]["parameters"][1]["value"] == "***"
    for fmt in ("json", "csv", "md"):
        assert CANARY not in render(recorded.run, recorded.output, fmt)


async def test_a_live_run_exports_what_is_known_so_far(tmp_path: Path) -> None:
    backend = FakeBackend(scenarios={"m001": Scenario(stdout=b"working\n", hang=True)})
    session = RunSession.plan([(m, COMMAND) for m in machines(2)], lambda _m: backend,
                              runs_root=tmp_path)
    # Not started: every machine pending, nothing grouped yet.
    report = render(session.run, session.output, "md")
    assert "still running at" in report and "2 pending of 2 machines" in report
    assert "No machine has produced output yet." in report
    doc = json.loads(render(session.run, session.output, "json"))
    assert doc["status"] == "running" and doc["groups"] == []
    assert {m["state"] for m in doc["machines"]} == {RunState.PENDING.value}


def test_formats_and_default_names() -> None:
    assert parse_format("JSON") == "json" and parse_format("markdown") == "md"
    with pytest.raises(ExportError, match="'xml' is not one of json, csv, md"):
        parse_format("xml")
    assert default_path("abc123", "md", Path("/tmp")) == Path("/tmp/fleetrun-abc123.md")


async def test_an_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    session = await finished_session(tmp_path)
    with pytest.raises(ExportError, match=r"cannot write .*/missing/out\.json"):
        write(session.run, session.output, "json", tmp_path / "missing" / "out.json")
    assert not list((tmp_path).glob("*.partial"))
