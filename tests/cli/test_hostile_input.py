"""No input hangs or crashes fleetrun: each of these is one line naming the file and the
field, exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import CliRunner, Home

SANDBOX_FLEET = """
[[machines]]
name = "{name}"
count = {count}
subscription = "00000000-0000-0000-0000-000000000001"
resource_group = "{group}"
location = "westeurope"
"""


def refused(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """The one error line, checked: exit 2, no traceback, every one of ``names`` in it."""
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stderr.strip()
    assert "\n" not in line and len(line) < 2000, line[:3000]
    for name in names:
        assert name in line, line
    return line


def sandbox_file(tmp_path: Path, *, name: str = "m1", count: int = 1, group: str = "rg",
                 storage: str = "") -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(storage + SANDBOX_FLEET.format(name=name, count=count, group=group))
    return path


# -- config.toml -----------------------------------------------------------------------------


def test_config_toml_that_is_not_utf8(cli: CliRunner, home: Home) -> None:
    home.config.mkdir(parents=True)
    (home.config / "config.toml").write_bytes(b'fleet = "caf\xe9"\n')
    line = refused(cli("machines", "--no-check"), str(home.config / "config.toml"))
    assert "not UTF-8" in line


def test_config_toml_that_is_a_directory(cli: CliRunner, home: Home) -> None:
    (home.config / "config.toml").mkdir(parents=True)
    line = refused(cli("machines", "--no-check"), str(home.config / "config.toml"))
    assert "is a directory" in line


# -- ~user in inventory key paths ------------------------------------------------------------


def test_unknown_user_in_a_toml_inventory_key_path(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[[hosts]]\nname = "web-1"\nidentity_file = "~nosuchuser/.ssh/id"\n')
    line = refused(cli("machines", "--fleet", str(path), "--no-check"),
                   f"{path}:3: hosts[0].identity_file", "~nosuchuser")
    assert "no such user" in line


def test_unknown_user_in_an_ansible_key_path(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text("[web]\nweb1 ansible_ssh_private_key_file=~nosuchuser/id\n")
    refused(cli("machines", "--fleet", str(path), "--no-check"),
            f"{path}:2: web1.ansible_ssh_private_key_file", "~nosuchuser: no such user")


def test_unknown_user_in_an_ssh_config_include(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "ssh_config"
    path.write_text("Include ~nosuchuser/config\nHost web1\n")
    refused(cli("machines", "--fleet", f"ssh-config:{path}", "--no-check"),
            f"{path}:1: Include", "~nosuchuser: no such user")


def test_unknown_user_in_a_fleet_path(cli: CliRunner) -> None:
    refused(cli("machines", "--fleet", "~nosuchuser/hosts.ini", "--no-check"),
            "~nosuchuser/hosts.ini", "no such user")


# -- sandbox fleet files ---------------------------------------------------------------------


def test_a_storage_key_that_is_not_base64(cli: CliRunner, tmp_path: Path) -> None:
    path = sandbox_file(tmp_path, storage='[storage]\nkey = "not base64!"\n')
    refused(cli("machines", "--fleet", f"sandbox:{path}", "--no-check"),
            str(path), "storage.key", "base64")


def test_control_characters_in_a_fleet_file_string(cli: CliRunner, tmp_path: Path) -> None:
    path = sandbox_file(tmp_path, group="r\\u0001g")
    refused(cli("machines", "--fleet", f"sandbox:{path}", "--no-check"),
            str(path), "machines[0].resource_group", "control character")


def test_a_fleet_file_that_is_not_utf8(cli: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_bytes(b'[[machines]]\nname = "m\xff"\n')
    refused(cli("machines", "--fleet", f"sandbox:{path}", "--no-check"), str(path), "UTF-8")


@pytest.mark.parametrize("template", ["m{n:>300000}", "m{n:{n}}", "m{n.real}", "m{n!r}"])
def test_a_name_template_is_checked_before_it_is_expanded(
        cli: CliRunner, tmp_path: Path, template: str) -> None:
    path = sandbox_file(tmp_path, name=template, count=2)
    refused(cli("machines", "--fleet", f"sandbox:{path}", "--no-check"),
            str(path), "machines[0].name: only the {n} placeholder is allowed")


# -- saved command patterns ------------------------------------------------------------------


def test_a_value_that_makes_a_saved_pattern_explode_does_not_hang_the_cli(
        cli: CliRunner, home: Home) -> None:
    commands = home.config / "commands"
    commands.mkdir(parents=True)
    (commands / "probe.toml").write_text(
        "name = \"probe\"\n[[parameters]]\nname = \"target\"\npattern = '^(a|a)+$'\n"
        "[scripts]\nshell = \"echo $target\"\n")
    try:
        result = cli("run", "--fleet", "local", "--command", "probe",
                     "-p", "target=" + "a" * 40 + "b", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the pattern check was still running after 30 s")
    refused(result, "parameter 'target'", "pattern too complex to check")
