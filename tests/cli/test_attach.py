"""Crash and re-attach: the run commands keep running on the service while fleetrun is dead.

The sandbox runs as its own process (``fleetrun sandbox serve``), the way Azure outlives
the client; ``fleetrun run --fleet azure`` points at it through config.toml, is killed with
SIGKILL mid-run, and ``fleetrun attach`` must complete the run with all of its output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.cli.conftest import FLEETRUN, CliRunner, Home, ServedSandbox

MACHINES = 50
LINES = 12
FLEET = f"""
[sandbox]
flush_interval = "0.5s"
seed = 11

[defaults]
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-crash"
location = "westeurope"

[[machines]]
name = "crash-{{n:02}}"
count = {MACHINES}
kind = "vm"
os = "linux"
executor = "simulated"
simulate = {{ duration = ["3s", "6s"], lines = {LINES}, output = "{{machine}} line {{line}}\\n" }}
"""


def expected_output(name: str) -> bytes:
    return "".join(f"{name} line {i}\n" for i in range(1, LINES + 1)).encode()


def test_attach_completes_a_run_whose_cli_was_killed(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    home.config.mkdir(parents=True, exist_ok=True)
    (home.config / "config.toml").write_text(serve_sandbox(FLEET) + "\npoll_interval = 0.5\n")
    runner = subprocess.Popen(
        [FLEETRUN, "run", "--fleet", "azure", "--shell", "simulated", "-o", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home.env(), text=True,
        stdin=subprocess.DEVNULL,
    )
    assert runner.stdout is not None
    run_id, outputs = "", 0
    submitted: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        # Kill it once every machine's run command is created (its first state event comes
        # after the PUT's answer) and output flows: the last one created still has 3 s to go,
        # so the kill comes before every machine is done, however slow the machine is.
        for line in runner.stdout:
            event = json.loads(line)
            run_id = run_id or event.get("run_id", "")
            outputs += event["event"] == "output"
            if event["event"] == "state":
                submitted.add(event["machine"])
            if len(submitted) == MACHINES and outputs:
                break
            assert time.monotonic() < deadline, (
                f"within 120 s: {len(submitted)} of {MACHINES} run commands created, "
                f"{outputs} output events")
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
    assert run_id

    before = json.loads(cli("show", run_id, "-o", "json").stdout)
    assert before["status"] == "interrupted"
    unfinished = [m for m in before["machines"] if m["state"] == "Unknown"]
    assert unfinished, "the kill came too late: every machine had finished"

    result = cli("attach", run_id[:10], "-o", "json", timeout=120)
    assert result.returncode == 0, result.stderr
    after = json.loads(result.stdout)
    assert after["run_id"] == run_id
    assert after["status"] == "finished"
    assert len(after["machines"]) == MACHINES
    for machine in after["machines"]:
        assert machine["state"] == "Succeeded", machine
        kept = Path(machine["stdout_file"]).read_bytes()
        assert kept == expected_output(machine["machine"]), machine["machine"]

    again = cli("attach", run_id, "-o", "json")
    assert again.returncode == 2
    assert "every machine" in again.stderr
