"""Output storage end to end through the CLI against a served sandbox (issue 17 items 3, 4).

`fleetrun azure setup-output` makes the container and records it; from then on a run's
output comes back whole however long it is (read from the blobs with the user's token), a
script above the 256 KiB inline limit goes by ``scriptUri``, `fleetrun attach` of a killed
run reads the blobs again, and no SAS signature is ever written anywhere fleetrun writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from core.azure.run_commands import run_command_name
from core.azure.session import blob_folder
from core.azure.settings import SANDBOX_TOKEN_ENV
from core.model import Machine, MachineKind, OsType
from tests.cli.conftest import FLEETRUN, CliRunner, Home, ServedSandbox

FLEET = """
[sandbox]
flush_interval = "0.2s"

[defaults]
subscription = "55555555-5555-4555-8555-555555555555"
resource_group = "rg-e2e"
location = "westeurope"

[[machines]]
name = "e2e-vm"
kind = "vm"
os = "linux"

[[machines]]
name = "e2e-arc"
kind = "arc"
os = "linux"
agent_version = "1.45.02800.0"

[[storage_accounts]]
name = "fleetout"
resource_group = "rg-out"
machine_identity_roles = { "*" = "Storage Blob Data Contributor" }
"""
MACHINES = {"e2e-vm", "e2e-arc"}
LONG = "seq 1 3000; seq 1 1200 >&2"
"""13,893 bytes on stdout and 4,893 on stderr: both well past the 4 KB tails."""
LONG_STDOUT = "".join(f"{n}\n" for n in range(1, 3001)).encode()
LONG_STDERR = "".join(f"{n}\n" for n in range(1, 1201)).encode()
INLINE_LIMIT = 256 * 1024
STORAGE_VERSION = "2026-10-06"


def configure(home: Home, table: str, *extra: str) -> None:
    """config.toml with the served sandbox's [azure] table, but no output storage yet."""
    lines = [line for line in table.splitlines() if not line.startswith("output_container")]
    home.config.mkdir(parents=True, exist_ok=True)
    path = home.config / "config.toml"
    path.write_text("\n".join([*lines, "poll_interval = 0.2", *extra]) + "\n")
    path.chmod(0o600)


def container_url(home: Home) -> str:
    for line in (home.config / "config.toml").read_text().splitlines():
        if line.startswith("output_container"):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError("setup-output recorded no output_container")


def read_blob(home: Home, url: str) -> bytes:
    """A blob read as fleetrun reads it in user-delegation mode: with the user's token."""
    response = httpx.get(url, timeout=10, headers={
        "Authorization": f"Bearer {home.exported[SANDBOX_TOKEN_ENV]}",
        "x-ms-version": STORAGE_VERSION})
    assert response.status_code == 200, (url, response.status_code, response.text)
    return response.content


def output_blob(home: Home, run_id: str, machine: dict[str, Any], stream: str) -> bytes:
    kind = MachineKind.VM if "/virtualMachines/" in machine["machine_id"] else MachineKind.ARC
    folder = blob_folder(Machine(id=machine["machine_id"], name=machine["machine"], kind=kind,
                                 os=OsType.LINUX))
    return read_blob(home, f"{container_url(home)}/{run_command_name(run_id)}/{folder}/"
                           f"{stream}.txt")


def run_json(cli: CliRunner, *args: str) -> dict[str, Any]:
    result = cli("run", "--fleet", "azure", *args, "-o", "json", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "setup-output" not in result.stderr  # storage is set: nothing was cut
    run: dict[str, Any] = json.loads(result.stdout)
    assert {m["machine"] for m in run["machines"]} == MACHINES
    assert {m["state"] for m in run["machines"]} == {"Succeeded"}, run["machines"]
    return run


def big_script(path: Path) -> bytes:
    """A shell script past the inline limit whose last line proves it arrived whole."""
    padding = "# " + "p" * 98 + "\n"
    body = 'echo "big script started"\n' + padding * (INLINE_LIMIT // len(padding) + 400)
    script = (body + 'echo "big script reached its last line"\n').encode()
    assert len(script) > INLINE_LIMIT + 16 * 1024
    path.write_bytes(script)
    return script


def assert_no_signature_anywhere(home: Home, *printed: str) -> None:
    """No SAS signature in the journal, the log, the output files, config or anything printed."""
    for text in printed:
        assert "sig=" not in text
    files = [p for p in [*home.data.rglob("*"), *home.config.rglob("*")] if p.is_file()]
    assert any(p.name.startswith("journal") for p in files)
    for path in files:
        data = path.read_bytes()
        assert b"sig=" not in data and b"sig%3D" not in data, path


def test_setup_output_then_full_output_big_scripts_and_show(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox, tmp_path: Path
) -> None:
    configure(home, serve_sandbox(FLEET))
    made = cli("azure", "setup-output", "--account", "fleetout")
    assert made.returncode == 0, made.stderr
    assert "✓ created container fleetrun-output in fleetout" in made.stdout
    assert "every subscription your login can see" in made.stderr  # none configured
    again = cli("azure", "setup-output", "--account", "fleetout", "--resource-group", "rg-out")
    assert again.returncode == 0, again.stderr
    assert "reused the existing container fleetrun-output" in again.stdout
    assert container_url(home).endswith("/fleetout/fleetrun-output")

    # Output well past the 4 KB tails comes back whole, and is whole in the blobs.
    run = run_json(cli, "--shell", LONG)
    for machine in run["machines"]:
        assert (machine["stdout_bytes"], machine["stderr_bytes"]) == (
            len(LONG_STDOUT), len(LONG_STDERR))
        assert output_blob(home, run["run_id"], machine, "stdout") == LONG_STDOUT
        assert output_blob(home, run["run_id"], machine, "stderr") == LONG_STDERR
        full = cli("show", run["run_id"], machine["machine"], "--full")
        assert full.returncode == 0, full.stderr
        assert full.stdout.encode() == LONG_STDOUT and full.stderr.encode() == LONG_STDERR

    # A script past the inline limit is uploaded once and passed by scriptUri: it ran whole.
    script = big_script(tmp_path / "big.sh")
    big = run_json(cli, "--shell", f"@{tmp_path / 'big.sh'}")
    for machine in big["machines"]:
        assert machine["stdout"] == "big script started\nbig script reached its last line\n"
    assert read_blob(home, f"{container_url(home)}/scripts/{big['run_id']}.sh") == script

    shown = cli("show", run["run_id"], "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert_no_signature_anywhere(home, made.stdout + made.stderr, shown.stdout,
                                 json.dumps(run), json.dumps(big))


def test_with_the_machines_identity_writing_the_output_is_whole(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    # output_identity = "system": the VM writes as its managed identity (the fleet file
    # grants it Storage Blob Data Contributor); Arc has no identity for blobs: a SAS.
    configure(home, serve_sandbox(FLEET), 'output_identity = "system"')
    made = cli("azure", "setup-output", "--account", "fleetout")
    assert made.returncode == 0, made.stderr
    run = run_json(cli, "--shell", LONG)
    for machine in run["machines"]:
        assert machine["stdout_bytes"] == len(LONG_STDOUT), machine
        assert output_blob(home, run["run_id"], machine, "stdout") == LONG_STDOUT
    assert_no_signature_anywhere(home, json.dumps(run))


def start_and_kill(home: Home, script: str) -> str:
    """Start a run, SIGKILL it once every machine's run command is running; its run id."""
    runner = subprocess.Popen(
        [FLEETRUN, "run", "--fleet", "azure", "--shell", script, "-o", "jsonl"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home.env(), text=True,
        stdin=subprocess.DEVNULL)
    assert runner.stdout is not None
    run_id, running = "", set()
    deadline = time.monotonic() + 120
    try:
        for line in runner.stdout:
            event = json.loads(line)
            run_id = run_id or event.get("run_id", "")
            if event["event"] == "state" and event.get("state") == "Running":
                running.add(event["machine"])
            if running == MACHINES:
                break
            assert time.monotonic() < deadline, f"within 120 s only {running} ran"
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=10)
    assert run_id and running == MACHINES
    return run_id


# Half the output before the kill, the rest after: attach has to read the blobs again.
SLOW_LONG = "seq 1 1500; seq 1 1200 >&2; sleep 3; seq 1501 3000"


def test_attach_of_a_killed_run_reads_the_blobs_with_the_users_token(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    configure(home, serve_sandbox(FLEET))
    assert cli("azure", "setup-output", "--account", "fleetout").returncode == 0
    run_id = start_and_kill(home, SLOW_LONG)
    attached = cli("attach", run_id, "-o", "json", timeout=120)
    assert attached.returncode == 0, attached.stderr
    run = json.loads(attached.stdout)
    assert {m["state"] for m in run["machines"]} == {"Succeeded"}, run["machines"]
    for machine in run["machines"]:
        assert (machine["stdout_bytes"], machine["stderr_bytes"]) == (
            len(LONG_STDOUT), len(LONG_STDERR)), machine
        full = cli("show", run_id, machine["machine"], "--full")
        assert full.stdout.encode() == LONG_STDOUT
    assert "setup-output" not in attached.stderr
    assert_no_signature_anywhere(home, attached.stdout, attached.stderr)


def test_attach_without_storage_ends_with_the_4_kb_hint_once(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    configure(home, serve_sandbox(FLEET))
    run_id = start_and_kill(home, SLOW_LONG)
    attached = cli("attach", run_id, "-o", "json", timeout=120)
    assert attached.returncode == 0, attached.stderr
    run = json.loads(attached.stdout)
    assert all(m["stdout_bytes"] <= 4096 for m in run["machines"])
    assert attached.stderr.count("fleetrun azure setup-output") == 1, attached.stderr
    assert "2 machine(s)" in attached.stderr
