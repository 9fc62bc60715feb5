"""``fleetrun machines --fleet FILE``: SSH inventories through the real CLI, in a subprocess."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.cli.conftest import CliRunner


def _machines(cli: CliRunner, *args: str, env: dict[str, str] | None = None) -> list[Any]:
    # --no-check: the fixtures name hosts that must never be contacted from a test.
    result = cli("machines", *args, "--no-check", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    listed: list[Any] = json.loads(result.stdout)
    return listed


def test_ansible_inventory_lists_hosts_with_groups_as_tags(cli: CliRunner,
                                                           fixtures: Path) -> None:
    listed = _machines(cli, "--fleet", str(fixtures / "hosts.ini"))
    by_name = {m["name"]: m for m in listed}
    assert len(listed) == 9
    web = by_name["web01.example.com"]
    assert web["id"] == "ssh:web01.example.com"
    assert web["kind"] == "ssh" and web["os"] == "linux"
    assert web["tags"] == {"app": "", "prod": "", "web": ""}
    # Not checked: the inventory's Unknown is shown.
    assert web["health"]["status"] == "Unknown"
    assert by_name["win1.example.com"]["os"] == "windows"


def test_target_tag_selects_a_group(cli: CliRunner, fixtures: Path) -> None:
    for inventory in ("hosts.ini", "hosts.yml"):
        listed = _machines(cli, "--fleet", str(fixtures / inventory), "--target", "tag:db")
        assert [m["name"] for m in listed] == ["db-a.example.com", "db-b.example.com"]
    either = _machines(cli, "--fleet", str(fixtures / "hosts.yml"),
                       "--target", "tag:db,windows !name:win3*")
    assert [m["name"] for m in either] == ["db-a.example.com", "db-b.example.com",
                                           "win1.example.com"]


def test_toml_inventory_and_tag_values(cli: CliRunner, fixtures: Path) -> None:
    listed = _machines(cli, "--fleet", str(fixtures / "hosts.toml"), "--target", "tag:web")
    assert [(m["name"], m["tags"]["env"]) for m in listed] == [("web-1", "prod"),
                                                               ("web-2", "canary")]
    canary = _machines(cli, "--fleet", str(fixtures / "hosts.toml"),
                       "--target", "tag:env=canary")
    assert [m["name"] for m in canary] == ["web-2"]


def test_ssh_config_from_home(cli: CliRunner, fixtures: Path, tmp_path: Path) -> None:
    home_dir = tmp_path / "home"
    shutil.copytree(fixtures / "ssh", home_dir / ".ssh")
    listed = _machines(cli, "--fleet", "ssh-config", env={"HOME": str(home_dir)})
    assert [m["name"] for m in listed][:4] == ["lab-1", "lab-2", "ci-runner", "deep-1"]
    assert {m["kind"] for m in listed} == {"ssh"}
    by_path = _machines(cli, "--fleet", f"ssh-config:{home_dir / '.ssh' / 'config'}",
                        "--target", "name:web-*", env={"HOME": str(home_dir)})
    assert [m["name"] for m in by_path] == ["web-1", "web-2"]


def test_two_inventories_and_local_together(cli: CliRunner, fixtures: Path) -> None:
    listed = _machines(cli, "--fleet", "local", "--fleet", str(fixtures / "hosts.toml"),
                       "--target", "kind:ssh,local")
    assert listed[0]["kind"] == "local"
    assert [m["name"] for m in listed[1:]] == ["web-1", "web-2", "bastion", "win-build-1"]


def test_a_bad_inventory_is_an_error_naming_file_line_and_field(
    cli: CliRunner, tmp_path: Path
) -> None:
    path = tmp_path / "inventory.toml"
    path.write_text('[[hosts]]\nname = "a"\n\n[[hosts]]\nname = "b"\nport = "abc"\n')
    result = cli("machines", "--fleet", str(path))
    assert result.returncode == 2
    assert f"{path}:6: hosts[1].port: 'abc' is not allowed; use 1 to 65535" in result.stderr
    assert "Traceback" not in result.stderr

    ini = tmp_path / "hosts.ini"
    ini.write_text("[web]\nweb[01:3]\n")
    result = cli("machines", "--fleet", str(ini))
    assert result.returncode == 2
    assert f"{ini}:2: web[01:3]:" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_file_is_an_error(cli: CliRunner, tmp_path: Path) -> None:
    result = cli("machines", "--fleet", str(tmp_path / "gone.yml"))
    assert result.returncode == 2
    assert "gone.yml: no such file" in result.stderr and "Traceback" not in result.stderr
