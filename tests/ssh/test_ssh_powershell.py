"""RunPowerShellScript over SSH: what reaches the host, and what never shows on its command line.

No Windows host is available to the tests: they check, through a recording SSH server, the
command line (constant code only) and the stdin payload (``-Name value`` parameters).
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from pathlib import Path

from core.backends.ssh import SshBackend, SshSettings
from core.backends.ssh_powershell import kill_command_line, run_command_line
from core.events import Finished
from core.model import Command, CommandId, Parameter, RunState
from tests.ssh.fake_server import fake_host


def decoded(command_line: str) -> str:
    flag, encoded = command_line.split()[-2:]
    assert flag == "-EncodedCommand"
    return base64.b64decode(encoded).decode("utf-16-le")


async def test_script_and_values_go_on_stdin_as_name_value_pairs(tmp_path: Path) -> None:
    secret = f"s3cr3t-{secrets.token_hex(8)}"
    script = "param($Greeting, $Token)\nWrite-Output \"$Greeting ${Token.Length}\""
    command = Command(CommandId.POWERSHELL, script, timeout=90, parameters=(
        Parameter("Token", secret, protected=True), Parameter("Greeting", "hello world"),
        Parameter("Empty", "")))
    async with fake_host(tmp_path) as host:
        host.trust()
        ssh = SshBackend(SshSettings(known_hosts=host.known_hosts))
        events = [e async for e in ssh.run(host.machine(), command, run_id="ps1")]
        await ssh.aclose()
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.state is RunState.SUCCEEDED
    [(line, stdin)] = host.received
    assert line == run_command_line()
    assert secret not in line and "Greeting" not in line and "Write-Output" not in decoded(line)
    sent = json.loads(stdin)
    assert sent["script"] == script
    assert sent["timeout"] == 90
    assert sent["parameters"] == [{"name": "Greeting", "value": "hello world"},
                                  {"name": "Token", "value": secret}]  # public first; no empty


def test_the_bootstrap_splats_named_parameters_and_keeps_the_exit_code() -> None:
    code = decoded(run_command_line("pwsh"))
    assert "& $path @named" in code
    assert "exit $code" in code
    assert run_command_line("pwsh").startswith("pwsh -NoLogo -NoProfile -NonInteractive")


def test_the_kill_command_names_only_the_run_token() -> None:
    code = decoded(kill_command_line("r1-abcd1234"))
    assert "fleetrun-' + 'r1-abcd1234'" in code and "taskkill /F /T" in code


async def test_a_cancel_sends_the_kill_command(tmp_path: Path) -> None:
    command = Command(CommandId.POWERSHELL, "Start-Sleep 60", timeout=60)
    async with fake_host(tmp_path) as host:
        host.trust()
        ssh = SshBackend(SshSettings(known_hosts=host.known_hosts))
        machine = host.machine()
        events = []

        async def run() -> None:
            async for event in ssh.run(machine, command, run_id="ps2"):
                events.append(event)

        task = asyncio.create_task(run())
        while not host.received:
            await asyncio.sleep(0.02)
        await ssh.cancel(machine, "ps2")
        await asyncio.wait_for(task, 10)
        await ssh.aclose()
    lines = [line for line, _ in host.received]
    token = json.loads(host.received[0][1])["token"]
    assert lines[1] == kill_command_line(token)
    assert isinstance(events[-1], Finished) and events[-1].state is RunState.CANCELED
