"""The run record: one shape for every front end and format, documented, masked once."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

from core.journal_store import Journal
from core.run_export import CSV_COLUMNS, render, render_view, write
from core.run_record import MACHINE_FIELDS, machine_record, run_record
from core.run_view import RunView
from core.runner import RunSession
from tests.fakes import FakeBackend, Scenario, machines
from tests.run_record_schema import csv_header, machine_fields, validate
from tests.unit.test_run_export import CANARY, COMMAND, finished_session


async def test_the_app_export_writes_the_documented_record(tmp_path: Path) -> None:
    """The app's export dialog calls core.run_export.write with its session."""
    session = await finished_session(tmp_path)
    path = write(session.run, session.output, "json", tmp_path / "run.json")
    doc = json.loads(path.read_text())
    validate(doc)
    assert doc["schema"] == "fleetrun.run/1" and doc["machine_count"] == 5
    assert [list(m) for m in doc["machines"]] == [list(MACHINE_FIELDS)] * 5


def test_the_schema_documents_the_machine_fields_and_the_csv_columns() -> None:
    assert machine_fields() == list(MACHINE_FIELDS)
    assert csv_header() == list(CSV_COLUMNS)


async def test_the_csv_header_is_the_documented_projection(tmp_path: Path) -> None:
    session = await finished_session(tmp_path)
    header = next(csv.reader(io.StringIO(render(session.run, session.output, "csv"))))
    assert header == csv_header()


async def test_a_running_run_and_one_read_back_as_interrupted_are_documented(
        tmp_path: Path) -> None:
    backend = FakeBackend(scenarios={"m001": Scenario(stdout=b"working\n", hang=True)})
    pending = RunSession.plan([(m, COMMAND) for m in machines(2)], lambda _m: backend,
                              runs_root=tmp_path)
    doc = run_record(RunView(pending.run, pending.output, pending.run.created))
    validate(doc)
    assert doc["status"] == "running" and doc["ended"] is None
    assert {m["stdout_file"] for m in doc["machines"]} == {None}

    journal = Journal(tmp_path / "journal.sqlite3")
    done = await finished_session(tmp_path, journal, echo_secret=False)
    record = dataclasses.replace(journal.get_run(done.run.run_id), status="interrupted",
                                 ended=None)
    doc = run_record(RunView.from_journal(record, runs_root=tmp_path / "runs"))
    validate(doc)
    assert doc["status"] == "interrupted" and doc["ended"] is None


async def test_a_protected_value_is_masked_alike_in_every_format(tmp_path: Path) -> None:
    """Masked as it arrived, and once more by the record whatever the front end: a value
    that reached a field unmasked (here, an error set after the fact) is masked the same in
    the JSON, the one-machine record, the CSV and the report."""
    session = await finished_session(tmp_path)
    failing = session.run.machines["m003"]
    failing.error = f"rejected {CANARY} at the gate"
    view = RunView(session.run, session.output, session.run.created)

    doc = run_record(view)
    record = doc["machines"][3]
    assert record == machine_record(view, failing)
    assert record["error"] == "rejected *** at the gate"
    assert record["stderr"] == "token *** rejected\n"
    (rows, report) = (list(csv.DictReader(io.StringIO(render_view(view, "csv")))),
                      render_view(view, "md"))
    assert rows[3]["error"] == record["error"]
    assert rows[3]["stderr_last_line"] == record["stderr"].strip()
    assert record["error"] in report and record["stderr"].strip() in report
    for text in (json.dumps(doc), render_view(view, "json"), render_view(view, "csv"), report):
        assert CANARY not in text
