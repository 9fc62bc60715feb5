"""History, show, crash recovery, secrets and memory, through the real `fleetrun`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core import config
from core.fanout import plan_run
from core.journal_store import Journal
from core.model import Command, CommandId
from tests.cli.conftest import FLEETRUN, CliRunner, Home
from tests.fakes import machines

CANARY = "CANARY-d41d8cd9-8f00b204"


def _run_id(result: subprocess.CompletedProcess[str]) -> str:
    return str(json.loads(result.stdout)["run_id"])


def test_history_and_show_after_a_run(cli: CliRunner) -> None:
    first = cli("run", "--fleet", "local", "--shell", "echo first", "-o", "json")
    second = cli("run", "--fleet", "local", "--shell", "echo second; exit 3", "-o", "json")
    assert first.returncode == 0 and second.returncode == 1

    history = cli("history", "-o", "json")
    assert history.returncode == 0, history.stderr
    runs = json.loads(history.stdout)
    assert [r["run_id"] for r in runs] == [_run_id(second), _run_id(first)]
    assert runs[0]["summary"] == {"Failed": 1} and runs[0]["status"] == "finished"

    show = cli("show", _run_id(second)[:10], "-o", "json")
    assert show.returncode == 0, show.stderr
    doc = json.loads(show.stdout)
    (machine,) = doc["machines"]
    assert machine["state"] == "Failed" and machine["exit_code"] == 3
    assert machine["stdout"] == "second\n"

    table = cli("history")
    assert _run_id(first) in table.stdout


def test_show_machine_tail_and_full_output(cli: CliRunner) -> None:
    # 10,000 numbered lines: the tail is the last 4096 bytes, --full is everything.
    result = cli("run", "--fleet", "local", "--shell", "seq 1 10000", "-o", "json")
    run_id = _run_id(result)
    name = json.loads(result.stdout)["machines"][0]["machine"]

    tail = cli("show", run_id, name, "-o", "json")
    doc = json.loads(tail.stdout)
    expected = "".join(f"{i}\n" for i in range(1, 10001))
    assert doc["stdout"] == expected[-4096:]

    full = cli("show", run_id, name, "--full")
    assert full.returncode == 0
    assert full.stdout == expected


def test_show_unknown_run_is_bad_input(cli: CliRunner) -> None:
    result = cli("show", "ffffffff")
    assert result.returncode == 2
    assert "ffffffff" in result.stderr and "Traceback" not in result.stderr


def test_protected_value_is_never_written_or_shown(cli: CliRunner, home: Home) -> None:
    # The script proves it got the value without ever printing it.
    digest = hashlib.sha256(CANARY.encode()).hexdigest()
    script = f'test "$(printf %s "$TOKEN" | sha256sum | cut -d" " -f1)" = {digest} && echo token-ok'
    result = cli(
        "run",
        "--fleet",
        "local",
        "--shell",
        script,
        "-P",
        "TOKEN",
        "-o",
        "json",
        env={"FLEETRUN_SECRET_TOKEN": CANARY},
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["machines"][0]["stdout"] == "token-ok\n"
    assert doc["command"]["parameters"] == [{"name": "TOKEN", "value": "***", "protected": True}]

    outputs = [result.stdout, result.stderr]
    run_id = doc["run_id"]
    for args in (
        ["history"],
        ["history", "-o", "json"],
        ["show", run_id],
        ["show", run_id, "-o", "json"],
        ["show", run_id, doc["machines"][0]["machine"]],
    ):
        shown = cli(*args)
        assert shown.returncode == 0, shown.stderr
        outputs += [shown.stdout, shown.stderr]
    for text in outputs:
        assert CANARY not in text
    written = [p for root in (home.data, home.config) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in written)
    assert any(p.name == "fleetrun.log" for p in written)
    for path in written:
        assert CANARY.encode() not in path.read_bytes(), path


def test_journal_survives_kill_9_mid_run(cli: CliRunner, home: Home) -> None:
    proc = subprocess.Popen(
        [
            FLEETRUN,
            "run",
            "--fleet",
            "local",
            "-o",
            "jsonl",
            "--shell",
            "echo started; echo pgid=$(ps -o pgid= $$ | tr -d ' '); exec sleep 60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=home.env(),
        text=True,
    )
    pgid = 0
    try:
        assert proc.stdout is not None
        seen = ""
        deadline = time.monotonic() + 20
        while "pgid=" not in seen and time.monotonic() < deadline:
            line = proc.stdout.readline()
            event = json.loads(line)
            if event["event"] == "output":
                seen += event["data"]
        pgid = int(seen.split("pgid=")[1].split()[0])
        time.sleep(0.5)  # let the journal writer commit the Running state
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    runs = json.loads(cli("history", "-o", "json").stdout)
    assert len(runs) == 1 and runs[0]["status"] == "interrupted"
    doc = json.loads(cli("show", runs[0]["run_id"], "-o", "json").stdout)
    (machine,) = doc["machines"]
    assert machine["state"] == "Unknown"
    assert "interrupted" in machine["error"]
    assert machine["started"] is not None
    assert machine["stdout"].startswith("started\n")
    assert Path(machine["stdout_file"]).read_text().startswith("started\n")


def _peak_rss_kb(args: list[str], home: Home) -> tuple[int, subprocess.CompletedProcess[str]]:
    proc = subprocess.Popen(
        [FLEETRUN, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=home.env(),
        text=True,
    )
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.02)
    stdout, stderr = proc.communicate()
    return peak, subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def test_50_mb_output_streams_in_flat_memory(home: Home) -> None:
    small_rss, small = _peak_rss_kb(
        ["run", "--fleet", "local", "--shell", "echo hi", "-o", "json"], home
    )
    big_rss, big = _peak_rss_kb(
        [
            "run",
            "--fleet",
            "local",
            "--shell",
            "head -c 50000000 /dev/zero | tr '\\0' x",
            "-o",
            "json",
        ],
        home,
    )
    assert small.returncode == 0 and big.returncode == 0, big.stderr
    machine = json.loads(big.stdout)["machines"][0]
    assert machine["stdout_bytes"] == 50_000_000
    assert Path(machine["stdout_file"]).stat().st_size == 50_000_000
    assert len(machine["stdout"]) == 4096
    # Streaming holds a few 64 KiB chunks at a time; 50 MB held in memory would show.
    assert big_rss - small_rss < 20_000, (small_rss, big_rss)


def test_show_names_the_parent_run_and_the_group_a_run_came_from(
        cli: CliRunner, home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(home.data))
    journal = Journal(config.journal_path())
    run = plan_run([(m, Command(CommandId.SHELL, "uptime")) for m in machines(1)],
                   parent_run_id="6b1622f50f4856",
                   source_group="group 2 (1 machine, exit 3): broken")
    journal.record_run(run)
    journal.finish_run(run)
    result = cli("show", run.run_id)
    assert result.returncode == 0, result.stderr
    assert "from run 6b1622f50f4856, group 2 (1 machine, exit 3): broken" in result.stdout
