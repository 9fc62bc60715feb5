"""``--fleet azure`` through the CLI: configuration errors, ARM ids, cleanup, secrets."""

from __future__ import annotations

import json
import re

import httpx

from core.azure.settings import SANDBOX_TOKEN_ENV
from tests.cli.conftest import CliRunner, Home, ServedSandbox

FLEET = """
[sandbox]
flush_interval = "0.2s"

[defaults]
subscription = "44444444-4444-4444-8444-444444444444"
resource_group = "rg-cli"
location = "northeurope"

[[machines]]
name = "cli-vm"
kind = "vm"
os = "linux"

[[machines]]
name = "cli-arc"
kind = "arc"
os = "linux"
agent_version = "1.45.02800.0"
"""
CANARY = "canary-7f3c9a1e-never-written"


def configure(home: Home, text: str) -> None:
    home.config.mkdir(parents=True, exist_ok=True)
    (home.config / "config.toml").write_text(text)


def test_machine_ids_are_full_arm_resource_ids(cli: CliRunner) -> None:
    result = cli("machines", "-o", "json")
    assert result.returncode == 0, result.stderr
    ids = {m["name"]: m["id"] for m in json.loads(result.stdout)}
    assert ids["web-01"] == (
        "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-prod-web"
        "/providers/Microsoft.Compute/virtualMachines/web-01")
    assert "/providers/Microsoft.HybridCompute/machines/stg-web-01" in ids["stg-web-01"]


def test_azure_without_configuration_says_how_to_configure_it(cli: CliRunner) -> None:
    result = cli("machines", "--fleet", "azure")
    assert result.returncode == 2
    assert "[azure]" in result.stderr and "config.toml" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_named(cli: CliRunner, home: Home) -> None:
    configure(home, '[azure]\ncleanup = "sometimes"\n')
    result = cli("machines", "--fleet", "azure")
    assert result.returncode == 2
    assert "azure.cleanup" in result.stderr and "delete" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_sandbox_credential_is_refused_for_a_real_endpoint(cli: CliRunner, home: Home) -> None:
    configure(home, '[azure]\ncredential = "sandbox"\n')
    result = cli("machines", "--fleet", "azure")
    assert result.returncode == 2
    assert "azure.credential" in result.stderr


def test_run_through_a_served_sandbox_keeps_or_deletes_run_commands(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    table = serve_sandbox(FLEET)
    base = re.search(r'arm_endpoint = "([^"]+)"', table)
    assert base
    for cleanup, remaining in (("keep", 1), ("delete", 0)):
        configure(home, f'{table}\npoll_interval = 0.2\ncleanup = "{cleanup}"\n')
        result = cli("run", "--fleet", "azure", "--shell", 'echo "$TOKEN" | wc -c; echo done',
                     "-P", "TOKEN", "-o", "json", env={"FLEETRUN_SECRET_TOKEN": CANARY})
        assert result.returncode == 0, result.stderr
        run = json.loads(result.stdout)
        assert {m["state"] for m in run["machines"]} == {"Succeeded"}
        assert all(m["stdout"] == f"{len(CANARY) + 1}\ndone\n" for m in run["machines"])
        vm = next(m for m in run["machines"] if m["machine"] == "cli-vm")
        listed = httpx.get(f"{base.group(1)}{vm['machine_id']}/runCommands",
                           params={"api-version": "2025-04-01"},
                           headers={"Authorization":
                                    f"Bearer {home.exported[SANDBOX_TOKEN_ENV]}"},
                           timeout=10)
        names = [c["name"] for c in listed.json()["value"]]
        assert names.count(f"fleetrun-{run['run_id']}") == remaining, (cleanup, names)
        assert CANARY not in result.stdout + result.stderr
    for path in [*home.data.rglob("*"), *home.config.rglob("*")]:
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def test_a_sandbox_credential_without_its_token_names_the_variable(
    cli: CliRunner, home: Home
) -> None:
    configure(home, '[azure]\narm_endpoint = "http://127.0.0.1:9"\ncredential = "sandbox"\n')
    for env in ({}, {SANDBOX_TOKEN_ENV: "  "}):
        result = cli("machines", "--fleet", "azure", env=env)
        assert result.returncode == 2
        assert f"${SANDBOX_TOKEN_ENV}" in result.stderr and "not set" in result.stderr
        assert "Traceback" not in result.stderr
    result = cli("machines", "--fleet", "azure", env={SANDBOX_TOKEN_ENV: "short\ttoken"})
    assert result.returncode == 2
    assert f"{SANDBOX_TOKEN_ENV}: not a usable token" in result.stderr
    assert "short" not in result.stderr


def test_an_unreachable_endpoint_is_an_error_not_a_traceback(cli: CliRunner, home: Home) -> None:
    # A loopback port nobody listens on: the connection is refused at once.
    configure(home, '[azure]\narm_endpoint = "http://127.0.0.1:9"\ncredential = "sandbox"\n')
    result = cli("machines", "--fleet", "azure", timeout=120,
                 env={SANDBOX_TOKEN_ENV: "a-token-for-a-sandbox-that-is-not-there"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: azure:"), result.stderr
    assert "ConnectionFailed" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_output_storage_a_cut_output_says_once_how_to_keep_it(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    table = serve_sandbox(FLEET)
    without_storage = "\n".join(line for line in table.splitlines()
                                if not line.startswith("output_container"))
    configure(home, f"{without_storage}\npoll_interval = 0.2\n")
    long = cli("run", "--fleet", "azure", "--shell", "head -c 6000 /dev/zero | tr '\\0' x",
               "-o", "json")
    assert long.returncode == 0, long.stderr
    run = json.loads(long.stdout)
    assert all(m["stdout_bytes"] <= 4096 for m in run["machines"])
    assert long.stderr.count("fleetrun azure setup-output") == 1, long.stderr
    assert "2 machine(s)" in long.stderr
    short = cli("run", "--fleet", "azure", "--shell", "echo short", "-o", "json")
    assert short.returncode == 0, short.stderr
    assert "setup-output" not in short.stderr


def test_setup_output_names_a_bad_account_in_one_line(cli: CliRunner, home: Home) -> None:
    configure(home, f'[azure]\narm_endpoint = "http://127.0.0.1:9"\ncredential = "sandbox"\n'
              f'subscriptions = ["{"1" * 8}-1111-4111-8111-111111111111"]\n')
    result = cli("azure", "setup-output", "--account", "Not_An_Account",
                 env={SANDBOX_TOKEN_ENV: "t" * 24})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --account: 'Not_An_Account' is not a storage account name; allowed: 3-24 "
        "lowercase letters and digits"]
    help_text = cli("azure", "setup-output", "--help").stdout
    assert "Storage Blob Data Contributor" in help_text and "--resource-group" in help_text
