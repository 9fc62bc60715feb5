"""The sandbox from the command line: the default fleet, ``sandbox:FILE``, ``sandbox serve``."""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import ssl
import subprocess
import time
from pathlib import Path

import httpx

from core.azure.settings import SANDBOX_TOKEN_ENV
from tests.cli.conftest import FLEETRUN, CliRunner, Home

FLEET_FILE = """
[sandbox]
flush_interval = "200ms"

[[machines]]
name = "lab-{n}"
count = 2
kind = "arc"
os = "linux"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-lab"
location = "westus2"
tags = { env = "lab" }
agent_version = "1.45.02800.0"
"""


def test_machines_default_to_the_sandbox_fleet_with_its_health(cli: CliRunner) -> None:
    result = cli("machines", "-o", "json")
    assert result.returncode == 0, result.stderr
    machines = {m["name"]: m for m in json.loads(result.stdout)}
    assert len(machines) == 22  # 18 VMs and Arc servers, 2 Uniform and 2 Flexible instances
    assert {m["kind"] for m in machines.values()} == {"vm", "arc"}
    health = {name: m["health"]["status"] for name, m in machines.items()}
    assert health["web-01"] == "Ready"
    assert health["web-05"] == "NotReady"
    assert health["db-02"] == "Deallocated"
    assert health["onprem-batch-02"] == "Disconnected"
    assert health["onprem-legacy-01"] == "AgentTooOld"
    assert health["onprem-locked-01"] == health["onprem-monitor-01"] == "Blocked"
    assert machines["onprem-monitor-01"]["health"]["remedy"] == [
        "azcmagent config set config.mode full"]
    [upgrade] = machines["onprem-legacy-01"]["health"]["remedy"]
    assert "sudo apt upgrade azcmagent" in upgrade and "sudo yum update azcmagent" in upgrade


def test_run_on_the_sandbox_runs_each_machine_as_itself(cli: CliRunner) -> None:
    result = cli(
        "run", "--target", "tag:role=web health:ready", "--shell",
        'echo "$HOSTNAME says $GREETING"', "-p", "GREETING=hi", "-o", "json",
    )
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    names = sorted(m["machine"] for m in run["machines"])
    assert names == ["stg-web-01", "stg-web-02", "web-01", "web-02", "web-03", "web-04"]
    for machine in run["machines"]:
        assert machine["state"] == "Succeeded"
        assert machine["stdout"] == f"{machine['machine']} says hi\n"


def test_unhealthy_sandbox_machines_are_skipped_not_failed(cli: CliRunner) -> None:
    result = cli("run", "--target", "name:web-05,db-02", "--shell", "true", "-o", "json")
    assert result.returncode == 1
    states = {m["machine"]: m["state"] for m in json.loads(result.stdout)["machines"]}
    assert states == {"web-05": "Skipped", "db-02": "Skipped"}


def test_machines_that_block_run_command_are_skipped_with_the_command_that_lifts_it(
        cli: CliRunner) -> None:
    result = cli("run", "--target", "name:onprem-locked-01,onprem-monitor-01,stg-web-01",
                 "--shell", "echo hi", "--powershell", "Write-Output hi", "-o", "lines")
    assert result.returncode == 1  # a skipped machine is not a success
    skips = sorted(line for line in result.stderr.splitlines() if "skipped: Blocked" in line)
    assert len(skips) == 2, result.stderr
    locked, monitor = skips
    assert locked.startswith("fleetrun: onprem-locked-01: skipped: Blocked (blocked on the "
                             "machine: microsoft.cplat.core/runcommandhandlerlinux is on the "
                             "agent's extensions blocklist)")
    assert locked.endswith('run on the machine: sudo azcmagent config set '
                           'extensions.blocklist ""')
    assert "monitor mode" in monitor
    assert monitor.endswith("run on the machine: azcmagent config set config.mode full")
    assert "stg-web-01" not in result.stderr  # the healthy machine ran


def test_an_agent_too_old_is_skipped_with_the_upgrade_that_lifts_it(cli: CliRunner) -> None:
    result = cli("run", "--target", "name:onprem-legacy-01", "--shell", "echo hi",
                 "-o", "lines")
    assert result.returncode == 1
    [skip] = [line for line in result.stderr.splitlines() if "skipped: AgentTooOld" in line]
    assert skip.startswith("fleetrun: onprem-legacy-01: skipped: AgentTooOld (agent "
                           "1.29.02286.0 is older than 1.33 (no run commands)); to lift it, "
                           "run on the machine: if command -v apt")
    assert skip.endswith("else sudo yum update azcmagent; fi")


def test_a_fleet_file_is_a_source(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(FLEET_FILE)
    result = cli("run", "--fleet", f"sandbox:{path}", "--shell", "echo $HOSTNAME", "-o", "json")
    assert result.returncode == 0, result.stderr
    outputs = sorted(m["stdout"] for m in json.loads(result.stdout)["machines"])
    assert outputs == ["lab-1\n", "lab-2\n"]


def test_a_bad_fleet_file_names_the_field(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(FLEET_FILE.replace('kind = "arc"', 'kind = "mainframe"'))
    for args in (("machines", "--fleet", f"sandbox:{path}"),
                 ("sandbox", "serve", "--fleet", str(path), "--port", "0")):
        result = cli(*args)
        assert result.returncode == 2
        assert "machines[0].kind: 'mainframe' is not allowed; allowed: vm, arc" in result.stderr
        assert "Traceback" not in result.stderr


def test_no_command_opens_on_the_sandbox(cli: CliRunner) -> None:
    result = cli()
    assert result.returncode == 0, result.stderr
    assert "web-01" in result.stdout and "onprem-dc-01" in result.stdout
    assert "fleetrun sandbox serve" in result.stdout


def _serve(home: Home, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """``sandbox serve`` in a process of its own, and its banner once printed in full."""
    process = subprocess.Popen(
        [FLEETRUN, "sandbox", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=home.env(**env),
        stdin=subprocess.DEVNULL, bufsize=0,
    )
    try:
        return process, _read_until(process, "Ctrl-C stops", within=30)
    except BaseException:
        process.kill()
        process.wait(timeout=10)
        raise


def _read_until(process: subprocess.Popen[bytes], marker: str, *, within: float) -> str:
    """What the process printed up to ``marker``; fails past the deadline or if it exits."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    printed = b""
    deadline = time.monotonic() + within
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while marker.encode() not in printed:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} within {within} s: {printed.decode()}"
            if not selector.select(timeout=left):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                errors = process.stderr.read() if process.stderr else b""
                raise AssertionError(f"serve exited early: {printed.decode()}{errors.decode()}")
            printed += chunk
    return printed.decode()


def _token(banner: str) -> str:
    found = re.search(rf"export {SANDBOX_TOKEN_ENV}=(\S+)", banner)
    assert found, banner
    return found.group(1)


def _stop(process: subprocess.Popen[bytes], how: int = signal.SIGINT) -> str:
    process.send_signal(how)
    # Generous: on two cores shared with a loaded test run, stopping took over 15 s.
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 0, stderr
    return stderr.decode()


def test_serve_prints_how_to_reach_it_and_answers_arm_calls(home: Home) -> None:
    process, banner = _serve(home)
    try:
        base = re.search(r"ARM base URL\s+(\S+)", banner)
        sas = re.search(r"container SAS\s+(\S+)", banner)
        assert base and sas
        assert "11111111-1111-4111-8111-111111111111" in banner
        vm = (f"{base[1]}/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/"
              "rg-prod-web/providers/Microsoft.Compute/virtualMachines/web-01")
        auth = {"Authorization": f"Bearer {_token(banner)}"}
        got = httpx.get(vm, params={"api-version": "2025-04-01", "$expand": "instanceView"},
                        headers=auth, trust_env=False)
        assert got.status_code == 200
        assert got.json()["properties"]["instanceView"]["vmAgent"]["statuses"][0][
            "displayStatus"] == "Ready"
        assert httpx.get(vm, params={"api-version": "2025-04-01"}, trust_env=False
                         ).status_code == 401
        blob = sas[1].replace("/fleetrun?", "/fleetrun/probe.txt?")
        created = httpx.put(blob, headers={"x-ms-blob-type": "AppendBlob",
                                           "x-ms-version": "2021-12-02"}, trust_env=False)
        assert created.status_code == 201, created.text
    finally:
        stderr = _stop(process)
    assert "sandbox stopped" in stderr


def test_serve_tls_uses_a_certificate_it_prints(home: Home) -> None:
    process, banner = _serve(home, "--tls")
    try:
        base = re.search(r"ARM base URL\s+(https://\S+)", banner)
        certificate = re.search(r"TLS certificate\s+(\S+)", banner)
        assert base and certificate
        assert Path(certificate[1]).is_file()
        url = f"{base[1]}/subscriptions/22222222-2222-4222-8222-222222222222/resourceGroups/" \
              "rg-onprem/providers/Microsoft.HybridCompute/machines/onprem-batch-02"
        trusted = ssl.create_default_context(cafile=certificate[1])
        got = httpx.get(url, params={"api-version": "2025-01-13"}, verify=trusted,
                        headers={"Authorization": f"Bearer {_token(banner)}"},
                        trust_env=False)
        assert got.status_code == 200
        assert got.json()["properties"]["status"] == "Disconnected"
        try:
            httpx.get(url, trust_env=False)
            raise AssertionError("an untrusted self-signed certificate was accepted")
        except httpx.ConnectError:
            pass
    finally:
        _stop(process)


def test_serve_stopped_by_sigterm_kills_running_scripts(home: Home) -> None:
    process, banner = _serve(home)
    try:
        base = re.search(r"ARM base URL\s+(\S+)", banner)
        assert base
        run_command = (f"{base[1]}/subscriptions/11111111-1111-4111-8111-111111111111/"
                       "resourceGroups/rg-prod-web/providers/Microsoft.Compute/"
                       "virtualMachines/web-02/runCommands/long")
        params = {"api-version": "2025-04-01"}
        auth = {"Authorization": f"Bearer {_token(banner)}"}
        body = {"location": "westeurope",
                "properties": {"source": {"script": "echo pid $$; exec sleep 300"}}}
        assert httpx.put(run_command, params=params, json=body, headers=auth,
                         trust_env=False).status_code == 201
        deadline = time.monotonic() + 10
        while True:
            view = httpx.get(run_command, params={**params, "$expand": "instanceView"},
                             headers=auth, trust_env=False).json()["properties"]["instanceView"]
            if found := re.search(r"pid (\d+)", view["output"]):
                break
            assert time.monotonic() < deadline, view
            time.sleep(0.1)
        pid = int(found[1])
        assert Path(f"/proc/{pid}").exists()
    finally:
        stderr = _stop(process, signal.SIGTERM)
    assert "sandbox stopped" in stderr
    assert not Path(f"/proc/{pid}/cmdline").exists() or b"sleep" not in Path(
        f"/proc/{pid}/cmdline").read_bytes()


# ---------------------------------------------------------------------------- its token


def test_serve_prints_a_generated_token_once_and_wants_it(home: Home) -> None:
    process, banner = _serve(home)
    try:
        token = _token(banner)
        assert len(token) >= 32 and banner.count(token) == 1
        base = re.search(r"ARM base URL\s+(\S+)", banner)
        assert base
        vm = (f"{base[1]}/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/"
              "rg-prod-web/providers/Microsoft.Compute/virtualMachines/web-01")
        params = {"api-version": "2025-04-01"}
        for guess in ("anything", "x", "fleetrun-sandbox", token[:-1]):
            refused = httpx.get(vm, params=params, trust_env=False,
                                headers={"Authorization": f"Bearer {guess}"})
            assert refused.status_code == 401, refused.text
            assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert httpx.get(vm, params=params, trust_env=False,
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
    finally:
        _stop(process)


def test_serve_uses_the_token_in_the_environment_and_never_prints_it(home: Home) -> None:
    chosen = "my-own-sandbox-token-0123456789"
    process, banner = _serve(home, **{SANDBOX_TOKEN_ENV: chosen})
    try:
        assert chosen not in banner
        assert f"export {SANDBOX_TOKEN_ENV}=" not in banner
        assert f"from ${SANDBOX_TOKEN_ENV}" in banner
        base = re.search(r"ARM base URL\s+(\S+)", banner)
        assert base
        vm = (f"{base[1]}/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/"
              "rg-prod-web/providers/Microsoft.Compute/virtualMachines/web-01")
        params = {"api-version": "2025-04-01"}
        assert httpx.get(vm, params=params, trust_env=False,
                         headers={"Authorization": f"Bearer {chosen}"}).status_code == 200
        assert httpx.get(vm, params=params, trust_env=False,
                         headers={"Authorization": "Bearer anything"}).status_code == 401
    finally:
        stderr = _stop(process)
    assert chosen not in stderr


def test_serve_refuses_an_unusable_token_in_the_environment(cli: CliRunner) -> None:
    result = cli("sandbox", "serve", "--port", "0", env={SANDBOX_TOKEN_ENV: "short"})
    assert result.returncode == 2
    assert f"{SANDBOX_TOKEN_ENV}: not a usable token" in result.stderr
    assert "short" not in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_token_a_fleet_principal_already_has(
        cli: CliRunner, tmp_path: Path) -> None:
    chosen = "a-shared-token-0123456789"
    fleet = tmp_path / "fleet.toml"
    fleet.write_text(FLEET_FILE + '\n[[principals]]\nname = "engineer-b"\ntoken = "'
                     + chosen + '"\n')
    fleet.chmod(0o600)
    result = cli("sandbox", "serve", "--port", "0", "--fleet", str(fleet),
                 env={SANDBOX_TOKEN_ENV: chosen})
    assert result.returncode == 2
    assert "principal 'engineer-b' has the sandbox's own token" in result.stderr
    assert chosen not in result.stderr
    assert "Traceback" not in result.stderr


def test_group_noise_collapses_uptime_like_outputs_in_the_table(cli: CliRunner,
                                                                 tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET_FILE)
    # Each machine prints its own name, a clock, a PID and a duration: noise, all of it.
    script = 'echo "$(hostname) $(date +%T.%N) up $$ ms, pid $$ [$$]"; echo same-answer'
    plain = cli("run", "--fleet", f"sandbox:{path}", "--shell", script, "-o", "table")
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.count("1 machine(s), exit 0") == 2
    noisy = cli("run", "--fleet", f"sandbox:{path}", "--shell", script, "-o", "table",
                "--group-noise")
    assert noisy.returncode == 0, noisy.stderr
    assert "2 machine(s), exit 0, modulo noise: lab-" in noisy.stdout
    assert "1 machine(s)" not in noisy.stdout
