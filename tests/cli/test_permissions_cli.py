"""The CLI before a run, for callers whose Azure role does not let them run everywhere.

``[sandbox] caller`` makes ``--fleet sandbox:FILE`` present a fleet principal's token: a
Reader lists the fleet (NotPermitted, the missing action named) and its run is refused
before anything is sent or recorded; an administrator of one resource group runs there
and is told, in one line, which machines it may not run on and why.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.azure.permissions import ARC_ROLE, ARC_RUN, VM_MANAGED_RUN, VM_ROLE
from tests.cli.conftest import CliRunner

SUB = "33333333-3333-4333-8333-333333333333"
FLEET = f"""
[sandbox]
flush_interval = "100ms"
CALLER

[defaults]
subscription = "{SUB}"
resource_group = "rg-lab"
location = "westus2"
os = "linux"
agent_version = "1.45.02800.0"

[[machines]]
name = "lab-arc"
kind = "arc"

[[machines]]
name = "ops-arc"
kind = "arc"
resource_group = "rg-ops"

[[machines]]
name = "lab-vm"
kind = "vm"

[[principals]]
name = "reader"
token = "reader-token-0123456789abcdef"
roles = [{{ role = "Reader", scope = "/subscriptions/{SUB}" }}]

[[principals]]
name = "ops-admin"
token = "ops-admin-token-0123456789abcdef"
roles = [{{ role = "Reader", scope = "/subscriptions/{SUB}" }},
         {{ role = "{ARC_ROLE}", scope = "/subscriptions/{SUB}/resourceGroups/rg-ops" }}]
"""


def fleet(tmp_path: Path, caller: str = "") -> str:
    path = tmp_path / f"lab-{caller or 'owner'}.toml"
    path.write_text(FLEET.replace("CALLER", f'caller = "{caller}"' if caller else ""))
    return f"sandbox:{path}"


def test_a_reader_lists_the_fleet_but_its_run_is_refused_before_anything_is_sent(
        cli: CliRunner, tmp_path: Path) -> None:
    earlier = cli("run", "--fleet", fleet(tmp_path), "--target", "name:lab-arc",
                  "--shell", "echo hi", "-o", "json")
    assert earlier.returncode == 0, earlier.stderr

    listed = cli("machines", "--fleet", fleet(tmp_path, "reader"), "-o", "json")
    assert listed.returncode == 0, listed.stderr
    health = {m["name"]: m["health"] for m in json.loads(listed.stdout)}
    assert {h["status"] for h in health.values()} == {"NotPermitted"}
    assert health["lab-arc"]["detail"] == f"may only read: needs {ARC_RUN} ({ARC_ROLE})"
    table = cli("machines", "--fleet", fleet(tmp_path, "reader"))
    assert "NotPermitted" in table.stdout and ARC_RUN in table.stdout

    refused = cli("run", "--fleet", fleet(tmp_path, "reader"), "--shell", "echo hi",
                  "-o", "json")
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.strip() == (
        f"error: you can run on 0 of 3 machines; 2 need `{ARC_RUN}` ({ARC_ROLE}); 1 needs "
        f"`{VM_MANAGED_RUN}` ({VM_ROLE}); nothing was run")
    runs = json.loads(cli("history", "-o", "json").stdout)
    assert [r["run_id"] for r in runs] == [json.loads(earlier.stdout)["run_id"]]


def test_an_administrator_of_one_resource_group_runs_there_and_is_told_the_rest(
        cli: CliRunner, tmp_path: Path) -> None:
    result = cli("run", "--fleet", fleet(tmp_path, "ops-admin"), "--shell", "echo hi",
                 "-o", "json")
    assert result.returncode == 1, result.stderr
    assert (f"you can run on 1 of 3 machines; 1 needs `{VM_MANAGED_RUN}` ({VM_ROLE}); 1 needs "
            f"`{ARC_RUN}` ({ARC_ROLE})") in result.stderr.splitlines()
    found = {m["machine"]: m for m in json.loads(result.stdout)["machines"]}
    assert found["ops-arc"]["state"] == "Succeeded"
    for name in ("lab-arc", "lab-vm"):
        assert found[name]["state"] == "Skipped"
        assert "NotPermitted (may only read: needs" in found[name]["error"]


def test_a_caller_that_is_not_a_principal_is_named(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("machines", "--fleet", fleet(tmp_path, "nobody"))
    assert result.returncode == 2
    assert "sandbox.caller: 'nobody' is not a principal; allowed: 'reader', 'ops-admin'" in (
        result.stderr)
