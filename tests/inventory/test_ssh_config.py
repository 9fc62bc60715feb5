"""``--fleet ssh-config``: the concrete Host aliases of an ssh config become SSH machines."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.fleet import FleetError, resolve_fleet
from core.fleet.ssh import SshReach
from core.inventory.errors import InventoryError
from core.inventory.ssh_config import load_ssh_config
from core.model import MachineKind, OsType, SshEndpoint


def _write(tmp_path: Path, text: str, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_aliases_in_order_with_includes_followed_and_patterns_left_out(fixtures: Path) -> None:
    machines = load_ssh_config(fixtures / "ssh" / "config", ssh_dir=fixtures / "ssh")

    # Included files come where their Include line is, their globs in sorted order; the
    # nested Include is relative to ~/.ssh too; README does not match *.conf.
    assert [m.name for m in machines] == [
        "lab-1", "lab-2", "ci-runner", "deep-1",
        "bastion", "web-1", "web-2", "db-primary", "db-replica", "legacy",
    ]


def test_each_alias_is_reached_by_its_alias_so_asyncssh_applies_the_config(
    fixtures: Path,
) -> None:
    machines = {m.name: m for m in load_ssh_config(fixtures / "ssh" / "config",
                                                   ssh_dir=fixtures / "ssh")}
    bastion = machines["bastion"]
    assert bastion.id == "ssh:bastion"
    assert bastion.kind is MachineKind.SSH and bastion.os is OsType.LINUX
    # Port, User and IdentityFile are in the config: the endpoint leaves them to asyncssh.
    assert bastion.ssh == SshEndpoint(host="bastion")
    assert all(m.ssh == SshEndpoint(host=m.name) for m in machines.values())


def test_address_is_the_first_hostname_that_applies(fixtures: Path) -> None:
    machines = {m.name: m for m in load_ssh_config(fixtures / "ssh" / "config",
                                                   ssh_dir=fixtures / "ssh")}
    assert machines["bastion"].address == "bastion.example.com"
    # %h is the alias; the later "Host web-1 / HostName ignored..." loses: first value wins.
    assert machines["web-1"].address == "web-1.prod.example.com"
    assert machines["web-2"].address == "web-2.prod.example.com"
    assert machines["lab-2"].address == "192.168.56.12"
    assert machines["legacy"].address == "legacy.example.com"  # Host=legacy, quoted value
    # A Match block's HostName is not evaluated for listing.
    assert machines["db-primary"].address == "db-primary"


def test_negated_and_wildcard_patterns_are_no_machines(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host a,b !c *.x ?y\n  User u\nHost c\n")
    assert [m.name for m in load_ssh_config(config, ssh_dir=tmp_path)] == ["a", "b", "c"]


def test_a_negated_pattern_stops_a_wildcard_block_applying(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host web-* !web-old\n  HostName %h.example.com\n"
                              "Host web-new web-old\n")
    machines = {m.name: m.address for m in load_ssh_config(config, ssh_dir=tmp_path)}
    assert machines == {"web-new": "web-new.example.com", "web-old": "web-old"}


def test_an_alias_in_two_blocks_is_one_machine(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host a\n  User x\nHost b a\n  Port 22\n")
    assert [m.name for m in load_ssh_config(config, ssh_dir=tmp_path)] == ["a", "b"]


def test_absolute_and_tilde_includes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    _write(tmp_path, "Host from-home\n", "extra.conf")
    other = tmp_path / "elsewhere"
    other.mkdir()
    _write(other, "Host from-absolute\n", "abs.conf")
    config = _write(tmp_path, f"Include ~/extra.conf {other}/*.conf\nHost main\n")
    names = [m.name for m in load_ssh_config(config)]
    assert names == ["from-home", "from-absolute", "main"]


def test_include_that_matches_nothing_is_ignored_as_ssh_does(tmp_path: Path) -> None:
    config = _write(tmp_path, "Include missing/*.conf\nHost a\n")
    assert [m.name for m in load_ssh_config(config, ssh_dir=tmp_path)] == ["a"]


# -- bad input -----------------------------------------------------------------------------


def _error(config: Path, ssh_dir: Path) -> str:
    with pytest.raises(InventoryError) as caught:
        load_ssh_config(config, ssh_dir=ssh_dir)
    return str(caught.value)


def test_host_without_patterns_names_the_line(tmp_path: Path) -> None:
    config = _write(tmp_path, "# top\nHost a\n\nHost\n")
    assert _error(config, tmp_path) == f"{config}:4: Host: needs a value"


def test_host_with_only_a_bang(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host !\n")
    assert _error(config, tmp_path) == f"{config}:1: Host: needs at least one host pattern"


def test_unclosed_quote_names_the_line(tmp_path: Path) -> None:
    config = _write(tmp_path, 'Host a\n  HostName "a.example.com\n')
    message = _error(config, tmp_path)
    assert message.startswith(f"{config}:2: HostName: ")
    assert "quot" in message


def test_include_without_a_file(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host a\nInclude\n")
    assert _error(config, tmp_path) == f"{config}:2: Include: needs a value"


def test_a_file_including_itself_stops_with_an_error(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host a\nInclude loop.conf\n")
    _write(tmp_path, "Include loop.conf\n", "loop.conf")
    message = _error(config, tmp_path)
    assert message.startswith(f"{tmp_path / 'loop.conf'}:1: Include: nested more than 16 deep")


def test_only_patterns_is_an_error_not_an_empty_fleet(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host *\n  User me\nHost *.example.com\n")
    message = _error(config, tmp_path)
    assert message.startswith(f"{config}: no hosts: ")
    assert "concrete alias" in message


def test_not_utf8_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_bytes(b"Host caf\xe9\n")
    assert _error(config, tmp_path) == f"{config}: not UTF-8 text (byte 8)"


async def test_ssh_config_source_with_a_path(tmp_path: Path) -> None:
    config = _write(tmp_path, "Host one two\n")
    source = resolve_fleet(f"ssh-config:{config}")
    assert source.reach == {MachineKind.SSH: SshReach(config)}  # the backend reads it too
    assert [m.name for m in await source.load()] == ["one", "two"]


async def test_ssh_config_default_is_home_ssh_config(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".ssh").mkdir()
    _write(tmp_path / ".ssh", "Include work.conf\nHost mine\n")
    _write(tmp_path / ".ssh", "Host at-work\n", "work.conf")
    machines = await resolve_fleet("ssh-config").load()
    assert [m.name for m in machines] == ["at-work", "mine"]


async def test_missing_default_config_says_how_to_name_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FleetError) as caught:
        await resolve_fleet("ssh-config").load()
    message = str(caught.value)
    assert f"{tmp_path}/.ssh/config: no such file" in message
    assert "ssh-config:PATH" in message
