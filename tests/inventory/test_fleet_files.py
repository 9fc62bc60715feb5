"""``--fleet PATH``: the format from the file, the SSH backend's plug, listing without it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from core.backends.registry import Backends
from core.events import MachineEvent
from core.inventory import ssh_source
from core.inventory.inventory_files import InventoryFormat, looks_like_path, sniff_format
from core.inventory.sources import FleetError, open_fleet, resolve_fleet
from core.model import (
    Command,
    Health,
    HealthStatus,
    Machine,
    MachineId,
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
    with pytest.raises(FleetError, match=r"bad\.toml:3: hosts\[0\]\.port: 0 is not allowed"):
        await open_fleet([str(path)])


class _StubSsh:
    """Stands in for the SSH backend: reports every host Ready."""

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: Health(HealthStatus.READY) for m in machines}

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        nothing: tuple[MachineEvent, ...] = ()  # never run here: only health is asked
        for event in nothing:
            yield event

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


async def test_the_backend_factory_is_the_one_plug_for_every_ssh_source(
    fixtures: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = _StubSsh()
    monkeypatch.setattr(ssh_source, "SSH_BACKEND_FACTORY", lambda: stub)
    for spec in (str(fixtures / "hosts.toml"), str(fixtures / "hosts.ini"),
                 f"ssh-config:{fixtures / 'ssh' / 'config'}"):
        assert resolve_fleet(spec).backends == {MachineKind.SSH: stub}
    fleet = await open_fleet([str(fixtures / "hosts.toml")])
    checked = await Backends(fleet.backends).refresh_health(fleet.machines)
    assert {m.health.status for m in checked} == {HealthStatus.READY}


async def test_without_a_backend_ssh_hosts_are_listed_with_their_inventory_health(
    fixtures: Path,
) -> None:
    fleet = await open_fleet(["local", str(fixtures / "hosts.toml")])
    assert fleet.backends == {}
    checked = await Backends(fleet.backends).refresh_health(fleet.machines)
    by_kind = {m.kind: m.health.status for m in checked}
    assert by_kind[MachineKind.SSH] is HealthStatus.UNKNOWN
    # the local machine is still checked by its backend
    assert by_kind[MachineKind.LOCAL] is not HealthStatus.UNKNOWN
    with pytest.raises(LookupError, match="no backend for ssh machines"):
        Backends(fleet.backends).for_machine(checked[-1])
