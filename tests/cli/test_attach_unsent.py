"""Killed during the PUT burst: ``attach`` completes every machine, including those whose
run command never reached Azure, and nothing of fleetrun's is left on any machine.

The sandbox serves in its own process with a small write bucket, so the PUTs of 40
machines take many seconds; ``fleetrun run`` is killed (SIGKILL) once a few of them are
answered, long before the last is sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.cli.conftest import FLEETRUN, CliRunner, Home, ServedSandbox

MACHINES = 40
SENT_BEFORE_KILL = 6
LINES = 6
FLEET = f"""
[sandbox]
flush_interval = "0.5s"
seed = 5

[throttle]
writes = {{ capacity = 4, refill_per_second = 2 }}

[defaults]
subscription = "44444444-4444-4444-8444-444444444444"
resource_group = "rg-burst"
location = "westeurope"

[[machines]]
name = "burst-{{n:02}}"
count = {MACHINES}
kind = "vm"
os = "linux"
executor = "simulated"
simulate = {{ duration = ["1s", "2s"], lines = {LINES}, output = "{{machine}} says {{line}}\\n" }}
"""
# The client's own write bucket mirrors the sandbox's, as it would ARM's.
CLIENT = """
poll_interval = 0.5

[azure.throttle.writes]
capacity = 4
refill_per_second = 2
"""


def expected_output(name: str) -> bytes:
    return "".join(f"{name} says {i}\n" for i in range(1, LINES + 1)).encode()


def kill_during_put_burst(home: Home, serve_sandbox: ServedSandbox) -> tuple[str, set[str]]:
    """Start a run and SIGKILL it once a few PUTs were answered; its id and those machines."""
    home.config.mkdir(parents=True, exist_ok=True)
    (home.config / "config.toml").write_text(serve_sandbox(FLEET) + CLIENT)
    runner = subprocess.Popen(
        [FLEETRUN, "run", "--fleet", "azure", "--shell", "simulated", "-o", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home.env(), text=True,
        stdin=subprocess.DEVNULL,
    )
    assert runner.stdout is not None
    run_id = ""
    submitted: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        # A machine's first state event follows its PUT's answer.
        for line in runner.stdout:
            event = json.loads(line)
            run_id = run_id or event.get("run_id", "")
            if event["event"] == "state":
                submitted.add(event["machine"])
            if len(submitted) >= SENT_BEFORE_KILL:
                break
            assert time.monotonic() < deadline, f"{len(submitted)} PUTs answered in 120 s"
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
    assert run_id
    return run_id, submitted


def leftovers(cli: CliRunner) -> list[dict[str, Any]]:
    listed = cli("cleanup", "--fleet", "azure", "--dry-run", "-o", "json", timeout=120)
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["machines"] == MACHINES and not report["unlisted"]
    found: list[dict[str, Any]] = report["run_commands"]
    return found


def test_attach_sends_what_the_killed_run_never_sent(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    run_id, _ = kill_during_put_burst(home, serve_sandbox)
    before = json.loads(cli("show", run_id, "-o", "json").stdout)
    assert before["status"] == "interrupted"

    result = cli("attach", run_id, "-o", "json", timeout=240)
    after = json.loads(result.stdout)
    assert result.returncode == 0, (result.stderr, [
        (m["machine"], m["state"], m["error"]) for m in after["machines"]
        if m["state"] != "Succeeded"])
    assert after["status"] == "finished" and len(after["machines"]) == MACHINES
    for machine in after["machines"]:
        assert machine["state"] == "Succeeded", machine
        assert Path(machine["stdout_file"]).read_bytes() == expected_output(machine["machine"])
    assert leftovers(cli) == []


def test_attach_no_submit_reports_the_unsent_not_started(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    run_id, submitted = kill_during_put_burst(home, serve_sandbox)

    result = cli("attach", run_id, "--no-submit", "-o", "json", timeout=240)
    assert result.returncode == 1, result.stderr  # not every machine succeeded
    after = json.loads(result.stdout)
    states = {m["machine"]: m for m in after["machines"]}
    assert len(states) == MACHINES
    not_started = {name for name, m in states.items() if m["state"] == "NotStarted"}
    # Far more than the PUTs in flight at the kill were never sent.
    assert len(not_started) >= MACHINES // 2, sorted(not_started)
    assert not not_started & submitted  # nothing whose PUT was answered
    for name, machine in states.items():
        if name in not_started:
            assert "never sent" in machine["error"], machine
            assert not machine["stdout_file"], machine  # nothing ran, nothing was kept
        else:
            assert machine["state"] == "Succeeded", machine
            assert Path(machine["stdout_file"]).read_bytes() == expected_output(name)
    assert leftovers(cli) == []
