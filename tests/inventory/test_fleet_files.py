"""``--fleet PATH``: the format from the file, the SSH backend's plug, listing without it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.backends.ssh import SshBackend
from core.fleet import FleetError, FleetOptions, open_fleet, resolve_fleet
from core.fleet.ssh import SshReach
from core.inventory.errors import InventoryError
from core.inventory.inventory_files import InventoryFormat, looks_like_path, sniff_format
from core.model import (
    MachineKind,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hosts.toml", ["web-1", "web-2", "bastion", "win-build-1"]),
        ("hosts.ini", ["jumphost", "web01.example.com"]),
        ("hosts.yml", ["jumphost", "web01.example.com"]),
    ],
)
async def test_the_extension_picks_the_format(fixtures: Path, name: str,
                                              expected: list[str]) -> None:
    machines = await resolve_fleet(str(fixtures / name)).load()
    assert [m.name for m in machines][: len(expected)] == expected
    assert {m.kind for m in machines} == {MachineKind.SSH}


@pytest.mark.parametrize(
    ("fixture", "copy_as", "first"),
    [
        ("hosts.ini", "hosts", "jumphost"),            # Ansible's own name, no extension
        ("hosts.yml", "inventory", "jumphost"),
        ("hosts.toml", "fleet.cfg", "web-1"),
        ("ssh/config", "ssh_config", "bastion"),     # its Includes are under ~/.ssh
    ],
)
async def test_without_a_telling_extension_the_text_decides(
    fixtures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    fixture: str, copy_as: str, first: str,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty ~/.ssh: Includes find nothing
    path = tmp_path / copy_as
    shutil.copy(fixtures / fixture, path)
    machines = await resolve_fleet(str(path)).load()
    assert machines[0].name == first


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# c\n; c\n[web]\nh\n", InventoryFormat.ANSIBLE_INI),
        ("h1\nh2 ansible_host=x\n", InventoryFormat.ANSIBLE_INI),
        ("---\nall:\n", InventoryFormat.ANSIBLE_YAML),
        ("all:  # inventory\n  hosts:\n", InventoryFormat.ANSIBLE_YAML),
        ("ServerAliveInterval 30\nHost a\n", InventoryFormat.SSH_CONFIG),
        ("Include config.d/*\n", InventoryFormat.SSH_CONFIG),
        ("host=a\n", InventoryFormat.SSH_CONFIG),
        ('[defaults]\nuser = "x"\n[[hosts]]\nname = "a"\n', InventoryFormat.TOML),
        ('[[hosts]]\nname = "a"\n', InventoryFormat.TOML),
        ('hosts = [{ name = "a" }]\n', InventoryFormat.TOML),
        ("", InventoryFormat.ANSIBLE_INI),
    ],
)
def test_sniffing(text: str, expected: InventoryFormat) -> None:
    assert sniff_format(text) is expected


def test_what_counts_as_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myhosts").write_text("h\n")
    for spec in ("./x", "inv/hosts", "~/hosts", "a.toml", "a.YML", "a.ini", "a.cfg", "myhosts"):
        assert looks_like_path(spec), spec
    for spec in ("", "nothing-here", "azur"):
        assert not looks_like_path(spec), spec


async def test_named_sources_come_before_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").write_text("[g]\nnot-this-host\n")
    (machine,) = await resolve_fleet("local").load()
    assert machine.kind is MachineKind.LOCAL  # this machine, not the file named local


def test_an_unknown_name_lists_the_sources_and_files() -> None:
    with pytest.raises(FleetError) as caught:
        resolve_fleet("nowhere")
    message = str(caught.value)
    assert "unknown source 'nowhere'" in message
    assert "ssh-config" in message and "inventory file" in message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match=r"no-such\.toml: no such file"):
        resolve_fleet(str(tmp_path / "no-such.toml"))
    with pytest.raises(FleetError, match="is a directory"):
        resolve_fleet(str(tmp_path) + "/")


async def test_a_bad_file_fails_when_loaded_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[hosts]]\nname = "a"\nport = 0\n')
    with pytest.raises(InventoryError,
                       match=r"bad\.toml:3: hosts\[0\]\.port: 0 is not allowed"):
        await open_fleet([str(path)])


async def test_every_ssh_source_shares_the_fleets_one_ssh_backend(fixtures: Path) -> None:
    config = fixtures / "ssh" / "config"
    specs = (str(fixtures / "hosts.toml"), str(fixtures / "hosts.ini"), f"ssh-config:{config}")
    for spec in specs:
        source = resolve_fleet(spec)
        assert set(source.reach) == {MachineKind.SSH}
    assert resolve_fleet(f"ssh-config:{config}").reach[MachineKind.SSH] == SshReach(config)
    fleet = await open_fleet(list(specs), FleetOptions(accept_new_host_keys=True))
    try:
        backend = fleet.backends.get(MachineKind.SSH)
        assert isinstance(backend, SshBackend)
        assert backend.settings.accept_new_host_keys
        assert backend.settings.config == (config,)
        assert {m.kind for m in fleet.machines} == {MachineKind.SSH}
    finally:
        await fleet.aclose()


async def test_a_fleet_without_ssh_sources_has_no_ssh_backend(fixtures: Path) -> None:
    fleet = await open_fleet(["local"])
    assert fleet.backends.kinds() == [MachineKind.LOCAL]
    await fleet.aclose()