"""``fleetrun cleanup`` against a served sandbox: the run commands a run kept (``cleanup =
"keep"``) are listed by a dry run, deleted by a real one, and none is left after."""

from __future__ import annotations

import json

from tests.cli.conftest import CliRunner, Home, ServedSandbox

FLEET = """
[sandbox]
flush_interval = "0.2s"

[defaults]
subscription = "55555555-5555-4555-8555-555555555555"
resource_group = "rg-left"
location = "westeurope"

[[machines]]
name = "left-{n}"
count = 4
kind = "vm"
os = "linux"
executor = "simulated"
simulate = { duration = "0.2s", lines = 1 }

[[machines]]
name = "left-arc"
kind = "arc"
os = "linux"
agent_version = "1.45.02800.0"
executor = "simulated"
simulate = { duration = "0.2s", lines = 1 }
"""


def cleanup_json(cli: CliRunner, *args: str) -> dict[str, object]:
    result = cli("cleanup", "--fleet", "azure", *args, "-o", "json", timeout=120)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def test_cleanup_lists_then_deletes_what_a_run_left(
    cli: CliRunner, home: Home, serve_sandbox: ServedSandbox
) -> None:
    home.config.mkdir(parents=True, exist_ok=True)
    (home.config / "config.toml").write_text(
        serve_sandbox(FLEET) + '\ncleanup = "keep"\npoll_interval = 0.2\n')
    ran = cli("run", "--fleet", "azure", "--shell", "simulated", "-o", "json", timeout=120)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]

    listed = cleanup_json(cli, "--dry-run")
    assert listed["machines"] == 5 and listed["dry_run"] is True
    assert listed["counts"] == {"deleted": 0, "would delete": 5, "kept": 0, "failed": 0}
    names = {(c["machine"], c["name"]) for c in listed["run_commands"]}  # type: ignore[attr-defined]
    assert names == {(m, f"fleetrun-{run_id}") for m in
                     ("left-1", "left-2", "left-3", "left-4", "left-arc")}

    cleaned = cli("cleanup", "--fleet", "azure", timeout=120)
    assert cleaned.returncode == 0, cleaned.stderr
    assert "5 fleetrun run command(s) on 5 machine(s): 5 deleted, 0 kept, 0 failed" in (
        cleaned.stderr)
    assert "left-arc" in cleaned.stdout  # the table names each one

    after = cleanup_json(cli, "--dry-run")
    assert after["run_commands"] == []
    none_left = cli("cleanup", "--fleet", "azure", timeout=120)
    assert "No fleetrun run commands on 5 machine(s)" in none_left.stderr


def test_cleanup_of_a_fleet_without_azure_machines_says_so(cli: CliRunner) -> None:
    result = cli("cleanup", "--fleet", "local")
    assert result.returncode == 2
    assert "no Azure VMs or Arc servers" in result.stderr
