"""Files fleetrun trusts are the user's own: config.toml and inventories that others may
change are refused, as OpenSSH refuses a loose ~/.ssh/config; what fleetrun keeps for itself
is owner-only, including a log and folders that were there before."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import CliRunner, Home

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def refused(result: subprocess.CompletedProcess[str], path: Path, why: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"error: {path}: {why}; fleetrun uses only files that are yours and private: "
        f"chmod go-w {path}"), result.stderr


def test_a_group_writable_config_toml_is_refused(cli: CliRunner, home: Home) -> None:
    home.config.mkdir(parents=True)
    config = home.config / "config.toml"
    config.write_text('fleet = "local"\n')
    config.chmod(0o664)
    refused(cli("machines", "--no-check"), config, "writable by group (mode 0664)")
    config.chmod(0o644)
    assert cli("machines", "--no-check").returncode == 0


def test_a_world_writable_inventory_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.toml"
    inventory.write_text('[[hosts]]\nname = "web-1"\n')
    inventory.chmod(0o666)
    refused(cli("machines", "--fleet", str(inventory), "--no-check"), inventory,
            "writable by group and other (mode 0666)")


def test_an_inventory_named_in_config_toml_is_checked_too(
        cli: CliRunner, home: Home, tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb1\n")
    inventory.chmod(0o620)
    home.config.mkdir(parents=True)
    (home.config / "config.toml").write_text(f'fleet = "{inventory}"\n')
    refused(cli("machines", "--no-check"), inventory, "writable by group (mode 0620)")


@as_root
def test_an_inventory_owned_by_another_user_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    inventory = tmp_path / "ssh_config"
    inventory.write_text("Host web1\n")
    os.chown(inventory, 4321, -1)
    result = cli("machines", "--fleet", f"ssh-config:{inventory}", "--no-check")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {inventory}: owned by uid 4321, not by you")


def test_the_log_is_owner_only_even_when_it_was_not(cli: CliRunner, home: Home) -> None:
    assert cli("history").returncode == 0
    log = home.data / "fleetrun.log"
    assert mode(log) == 0o600
    log.chmod(0o644)
    assert cli("history").returncode == 0
    assert mode(log) == 0o600


def test_data_and_config_dirs_that_exist_loose_are_tightened(
        cli: CliRunner, home: Home) -> None:
    for folder in (home.data, home.config):
        folder.mkdir(parents=True)
        folder.chmod(0o755)
    assert cli("commands", "list").returncode == 0  # the log in one, commands in the other
    assert mode(home.data) == 0o700
    assert mode(home.config) == 0o700
