"""`fleetrun run` end to end on this machine: output formats, exit codes, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import CliRunner


def test_json_output_has_the_documented_shape(cli: CliRunner) -> None:
    result = cli(
        "run",
        "--fleet",
        "local",
        "--shell",
        'echo "$GREETING $1"; echo oops >&2',
        "-p",
        "GREETING=hello",
        "-a",
        "world",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) >= {"run_id", "command", "summary", "machines"}
    assert doc["summary"] == {"Succeeded": 1}
    assert doc["command"]["command_id"] == "RunShellScript"
    (machine,) = doc["machines"]
    assert set(machine) >= {
        "machine",
        "kind",
        "os",
        "state",
        "exit_code",
        "started",
        "ended",
        "stdout",
        "stderr",
        "stdout_file",
        "stderr_file",
        "error",
    }
    assert machine["kind"] == "local" and machine["os"] == "linux"
    assert machine["state"] == "Succeeded" and machine["exit_code"] == 0
    assert machine["stdout"] == "hello world\n"
    assert machine["stderr"] == "oops\n"
    assert Path(machine["stdout_file"]).read_text() == "hello world\n"
    assert Path(machine["stderr_file"]).read_text() == "oops\n"


def test_failed_machine_exits_1_with_reason(cli: CliRunner) -> None:
    result = cli("run", "--fleet", "local", "--shell", "exit 7", "-o", "json")
    assert result.returncode == 1
    (machine,) = json.loads(result.stdout)["machines"]
    assert machine["state"] == "Failed" and machine["exit_code"] == 7
    assert "7" in machine["error"]


def test_timeout_exits_1_as_timed_out(cli: CliRunner) -> None:
    result = cli("run", "--fleet", "local", "--shell", "sleep 30", "--timeout", "1", "-o", "json")
    assert result.returncode == 1
    (machine,) = json.loads(result.stdout)["machines"]
    assert machine["state"] == "TimedOut" and machine["exit_code"] == -1


def test_script_from_file(cli: CliRunner, tmp_path: Path) -> None:
    script = tmp_path / "check.sh"
    script.write_text('#!/bin/bash\necho "from file $#"\n')
    result = cli("run", "--fleet", "local", "--shell", f"@{script}", "-a", "x", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["machines"][0]["stdout"] == "from file 1\n"
    assert doc["command"]["script_path"] == str(script)


def test_jsonl_streams_events_in_order(cli: CliRunner) -> None:
    result = cli("run", "--fleet", "local", "--shell", "echo one; echo two", "-o", "jsonl")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events[0]["machine_count"] == 1  # the run record's name for it
    assert kinds.index("state") < kinds.index("output") < kinds.index("finished")
    text = "".join(e["data"] for e in events if e["event"] == "output" and e["stream"] == "stdout")
    assert text == "one\ntwo\n"
    assert events[-1]["summary"] == {"Succeeded": 1}


def test_table_output_groups_and_lists(cli: CliRunner) -> None:
    result = cli("run", "--fleet", "local", "--shell", "echo grouped-line", "-o", "table")
    assert result.returncode == 0, result.stderr
    assert "grouped-line" in result.stdout
    assert "1 machine(s), exit 0" in result.stdout
    assert "Succeeded" in result.stdout


def test_target_that_matches_nothing_is_bad_input(cli: CliRunner) -> None:
    result = cli("run", "--fleet", "local", "--target", "name:nope-*", "--shell", "true")
    assert result.returncode == 2
    assert "--target" in result.stderr and "no machines" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "--shell"),
        (["--shell", "true", "-p", "NOEQUALS"], "NAME=VALUE"),
        (["--shell", "true", "--timeout", "soon"], "--timeout"),
        (["--shell", "true", "--timeout", "-5"], "--timeout"),
        (["--shell", "true", "--concurrency", "0"], "--concurrency"),
        (["--shell", "true", "--concurrency", "150%"], "--concurrency"),
        (["--shell", "true", "--max-errors", "x"], "--max-errors"),
        (["--shell", "true", "-p", "1BAD=x"], "1BAD"),
        (["--shell", "true", "-p", "A=1", "-p", "A=2"], "A"),
        (["--shell", "@/no/such/file.sh"], "no such file"),
        (["--shell", "   "], "script"),
        (["--powershell", "Get-Date"], "--shell"),
        (["--shell", "true", "--target", "colour:red"], "colour"),
        (["--shell", "true", "-P", "TOKEN"], "FLEETRUN_SECRET_TOKEN"),
        (["--shell", "true", "--run-as-password"], "--run-as"),
        (["--shell", "true", "-o", "xml"], "xml"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    cli: CliRunner, args: list[str], expected: str
) -> None:
    fleet = [] if args[:1] == ["--fleet"] else ["--fleet", "local"]
    result = cli("run", *fleet, *args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_fleet_names_the_allowed_ones(cli: CliRunner) -> None:
    result = cli("run", "--fleet", "narnia", "--shell", "true")
    assert result.returncode == 2
    assert "narnia" in result.stderr and "local" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_value_warns_but_runs(cli: CliRunner) -> None:
    result = cli(
        "run",
        "--fleet",
        "local",
        "--shell",
        'echo "[${EMPTY-unset}]"',
        "-p",
        "EMPTY=",
        "-o",
        "json",
    )
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "EMPTY" in result.stderr
    assert json.loads(result.stdout)["machines"][0]["stdout"] == "[unset]\n"


def test_help_lists_the_commands(cli: CliRunner) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("run", "history", "show", "machines", "sandbox"):
        assert command in result.stdout


def test_machines_lists_local_with_health(cli: CliRunner) -> None:
    result = cli("machines", "--fleet", "local", "-o", "json")
    assert result.returncode == 0, result.stderr
    (machine,) = json.loads(result.stdout)
    assert machine["kind"] == "local" and machine["health"]["status"] == "Ready"


def test_the_gate_refusal_reads_as_the_core_problem(cli: CliRunner) -> None:
    """The CLI only renders what the core's gate found: the same message the TUI shows."""
    from core.model import Command, CommandId, Parameter
    from core.validate import validate_selection
    from tests.fakes import machines

    [problem] = validate_selection([(machines(1)[0], Command(
        CommandId.SHELL, "true", parameters=(Parameter("not-a-name", "1"),)))])
    result = cli("run", "--fleet", "local", "--shell", "true", "-p", "not-a-name=1")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith(f"parameter [0].name: {problem.message}")
