"""`fleetrun export`: a past run as JSON, CSV or a Markdown report, through the real CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from tests.cli.conftest import CliRunner, Home

CANARY = "CANARY-0b5e4f1d-export"

FLEET = """
[sandbox]
flush_interval = "0.2s"

[defaults]
subscription = "55555555-5555-4555-8555-555555555555"
resource_group = "rg-export"
location = "westeurope"

[[machines]]
name = "web-{n}"
count = 3
kind = "vm"
os = "linux"
"""

SCRIPT = ('test -n "$TOKEN" || exit 9; '
          'if [ "$HOSTNAME" = web-2 ]; then echo "disk full" >&2; exit 4; fi; echo healthy')


def test_export_writes_each_format_without_the_secret(
        cli: CliRunner, home: Home, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET)
    ran = cli("run", "--fleet", f"sandbox:{fleet}", "--shell", SCRIPT, "-P", "TOKEN",
              "-o", "json", env={"FLEETRUN_SECRET_TOKEN": CANARY})
    assert ran.returncode == 1, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]

    report = cli("export", run_id[:10])
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"# fleetrun run {run_id}: 1 failed of 3 machines")
    assert "### Group 1: 2 machines, exit 0 (2 Succeeded)" in report.stdout
    assert "Machines: web-1, web-3" in report.stdout
    assert "| web-2 | Failed | 4 |" in report.stdout and "disk full" in report.stdout

    out = tmp_path / "run.json"
    written = cli("export", run_id, "--format", "json", "-o", str(out))
    assert written.returncode == 0, written.stderr
    assert str(out) in written.stderr and written.stdout == ""
    doc = json.loads(out.read_text())
    assert doc["run_id"] == run_id and doc["summary"] == {"Succeeded": 2, "Failed": 1}
    assert [g["machines"] for g in doc["groups"]] == [["web-1", "web-3"], ["web-2"]]
    assert doc["command"]["parameters"] == [{"name": "TOKEN", "value": "***",
                                             "protected": True}]

    table = cli("export", run_id, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(table.stdout)))
    assert [(r["machine"], r["state"], r["exit_code"]) for r in rows] == [
        ("web-1", "Succeeded", "0"), ("web-2", "Failed", "4"), ("web-3", "Succeeded", "0")]
    assert rows[1]["stderr_last_line"] == "disk full"

    for text in (report.stdout, out.read_text(), table.stdout):
        assert CANARY not in text


def test_export_errors_are_named_without_tracebacks(cli: CliRunner, tmp_path: Path) -> None:
    unknown = cli("export", "ffffffff")
    assert unknown.returncode == 2
    assert "ffffffff" in unknown.stderr and "Traceback" not in unknown.stderr

    ran = cli("run", "--fleet", "local", "--shell", "echo hi", "-o", "json")
    run_id = json.loads(ran.stdout)["run_id"]
    nowhere = cli("export", run_id, "-o", str(tmp_path / "no" / "such" / "dir.md"))
    assert nowhere.returncode == 2
    assert "-o: cannot write" in nowhere.stderr and "Traceback" not in nowhere.stderr

    bad = cli("export", run_id, "--format", "xml")
    assert bad.returncode == 2 and "--format" in bad.stderr
