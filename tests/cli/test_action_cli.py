"""The action Run Command API from the command line, on sandbox fleets: ``--api``,
``--builtin`` and ``fleetrun commands builtin``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import CliRunner

FLEET = """
[sandbox]
flush_interval = "100ms"

[[machines]]
name = "ok-vm"
kind = "vm"
os = "linux"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-lab"
location = "westus2"

[[machines]]
name = "denied-vm"
kind = "vm"
os = "linux"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-lab"
location = "westus2"
faults = { managed_forbidden = true }

[[machines]]
name = "win-vm"
kind = "vm"
os = "windows"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-lab"
location = "westus2"

[[machines]]
name = "lab-arc"
kind = "arc"
os = "linux"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-lab"
location = "westus2"
"""


def fleet(tmp_path: Path) -> str:
    path = tmp_path / "lab.toml"
    path.write_text(FLEET)
    return f"sandbox:{path}"


def machines(stdout: str) -> dict[str, dict[str, object]]:
    return {m["machine"]: m for m in json.loads(stdout)["machines"]}


def test_auto_falls_back_to_the_action_api_on_a_403_saying_so(
        cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--fleet", fleet(tmp_path), "--target", "os:linux kind:vm",
                 "--shell", "echo hi", "-o", "json")
    assert result.returncode == 0, result.stderr
    found = machines(result.stdout)
    assert found["ok-vm"]["exit_code"] == 0 and found["ok-vm"]["error"] == ""
    denied = found["denied-vm"]
    assert denied["state"] == "Succeeded" and denied["stdout"] == "hi\n"
    assert "managed run commands not permitted (403 AuthorizationFailed)" in str(denied["error"])
    assert "no exit code" in str(denied["error"]) and denied["exit_code"] is None


def test_api_managed_skips_where_managed_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--fleet", fleet(tmp_path), "--target", "name:denied-vm", "--api",
                 "managed", "--shell", "echo hi", "-o", "json")
    assert result.returncode == 1
    denied = machines(result.stdout)["denied-vm"]
    assert denied["state"] == "Skipped"
    assert "not permitted: needs `Microsoft.Compute/virtualMachines/runCommands/write`" in str(
        denied["error"])


def test_api_action_runs_vms_and_skips_arc(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--fleet", fleet(tmp_path), "--target", "name:ok-vm,lab-arc",
                 "--api", "action", "--shell", "echo out; exit 4", "-o", "json")
    found = machines(result.stdout)
    assert found["ok-vm"]["state"] == "Succeeded" and found["ok-vm"]["stdout"] == "out\n"
    assert found["lab-arc"]["state"] == "Skipped"
    assert "no action Run Command API" in str(found["lab-arc"]["error"])
    assert json.loads(result.stdout)["command"]["api"] == "action"


def test_a_bad_api_value_is_one_line_naming_the_choices(cli: CliRunner) -> None:
    result = cli("run", "--api", "fast", "--shell", "true")
    assert result.returncode == 2
    assert "--api" in result.stderr and "managed" in result.stderr and "action" in result.stderr
    assert "Traceback" not in result.stderr


def test_builtin_with_a_script_or_api_managed_is_refused(cli: CliRunner) -> None:
    both = cli("run", "--builtin", "ifconfig", "--shell", "true")
    assert both.returncode == 2 and "--builtin" in both.stderr
    managed = cli("run", "--builtin", "ifconfig", "--api", "managed")
    assert managed.returncode == 2 and "only through the action API" in managed.stderr


def test_builtins_are_listed_per_os_with_their_parameters(
        cli: CliRunner, tmp_path: Path) -> None:
    result = cli("commands", "builtin", "--fleet", fleet(tmp_path), "-o", "json")
    assert result.returncode == 0, result.stderr
    listed = {c["id"]: c for c in json.loads(result.stdout)}
    assert listed["ifconfig"]["os"] == "linux"
    assert listed["IPConfig"]["os"] == "windows"
    assert [p["name"] for p in listed["SetRDPPort"]["parameters"]] == ["RDPPort"]
    assert "RunShellScript" not in listed  # that one is --shell
    table = cli("commands", "builtin", "--fleet", fleet(tmp_path))
    assert "RDPSettings" in table.stdout and "ifconfig" in table.stdout


def test_a_builtin_runs_on_the_vms_of_its_os(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--fleet", fleet(tmp_path), "--builtin", "ifconfig",
                 "-p", "arguments=-a", "-o", "json")
    assert result.returncode == 0, result.stderr
    found = machines(result.stdout)
    assert set(found) == {"ok-vm", "denied-vm"}
    assert all("eth0" in str(m["stdout"]) for m in found.values())
    assert "2 machine(s) left out: it is a Linux built-in" in result.stderr
    assert json.loads(result.stdout)["command"]["builtin"] == "ifconfig"


def test_builtin_errors_name_what_is_allowed(cli: CliRunner, tmp_path: Path) -> None:
    unknown = cli("run", "--fleet", fleet(tmp_path), "--builtin", "nope")
    assert unknown.returncode == 2 and "ifconfig" in unknown.stderr
    bad_param = cli("run", "--fleet", fleet(tmp_path), "--builtin", "ifconfig", "-p", "x=1")
    assert bad_param.returncode == 2 and "it has: arguments" in bad_param.stderr
