"""Every front end prints the one documented run record (docs/run-record.schema.json)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import CliRunner
from tests.run_record_schema import validate

SCRIPT = 'echo "hello from $HOSTNAME"; echo warn >&2; exit 3'


def test_run_show_history_and_export_print_the_documented_record(
        cli: CliRunner, tmp_path: Path) -> None:
    ran = cli("run", "--fleet", "local", "--shell", SCRIPT, "-o", "json")
    assert ran.returncode == 1, ran.stderr
    live = json.loads(ran.stdout)
    validate(live)
    assert live["schema"] == "fleetrun.run/1" and live["status"] == "finished"
    (machine,) = live["machines"]
    assert machine["exit_code"] == 3 and machine["stderr"] == "warn\n" and machine["group"] == 1
    run_id, name = live["run_id"], machine["machine"]

    shown = json.loads(cli("show", run_id, "-o", "json").stdout)
    validate(shown)
    out = tmp_path / "run.json"
    assert cli("export", run_id, "--format", "json", "-o", str(out)).returncode == 0
    exported = json.loads(out.read_text())
    validate(exported)
    # Read back from history, the run is the one that was printed live.
    for doc in (shown, exported):
        assert {k: v for k, v in doc.items() if k != "exported"} == {
            k: v for k, v in live.items() if k != "exported"}

    one = json.loads(cli("show", run_id, name, "-o", "json").stdout)
    validate(one, "machine_run")
    assert one == machine
    full = json.loads(cli("show", run_id, name, "--full", "-o", "json").stdout)
    validate(full, "machine_run")

    listed = json.loads(cli("history", "-o", "json").stdout)
    for entry in listed:
        validate(entry, "listed_run")
    assert listed[0]["schema"] == "fleetrun.run-summary/1"
    assert {k: listed[0][k] for k in ("run_id", "status", "summary", "commands")} == {
        k: live[k] for k in ("run_id", "status", "summary", "commands")}


def test_a_stream_that_printed_nothing_has_no_file(cli: CliRunner) -> None:
    ran = cli("run", "--fleet", "local", "--shell", "echo only-stdout", "-o", "json")
    (machine,) = json.loads(ran.stdout)["machines"]
    assert Path(machine["stdout_file"]).read_text() == "only-stdout\n"
    assert machine["stderr_file"] is None and machine["stderr"] == ""
