"""fleetrun's TOML inventory: the documented format, and every way it can be wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.inventory.errors import InventoryError
from core.inventory.toml_inventory import load_toml_inventory, parse_toml_inventory
from core.model import MachineKind, OsType, SshEndpoint

EXAMPLE = Path(__file__).resolve().parents[2] / "core" / "inventory" / "inventory.example.toml"


def test_fixture_hosts_with_defaults_merged(fixtures: Path) -> None:
    machines = {m.name: m for m in load_toml_inventory(fixtures / "hosts.toml")}
    assert list(machines) == ["web-1", "web-2", "bastion", "win-build-1"]
    fleet_key = os.path.abspath(fixtures / "keys" / "fleet")

    web1 = machines["web-1"]
    assert web1.id == "ssh:web-1" and web1.kind is MachineKind.SSH
    assert web1.os is OsType.LINUX
    assert web1.address == "10.0.0.5"
    assert web1.ssh == SshEndpoint("10.0.0.5", 2222, "ops", fleet_key)
    # defaults' tags under the host's; every group (defaults' too) a tag with no value
    assert web1.tags == {"env": "prod", "role": "web", "fleet": "", "web": "", "eu": ""}

    web2 = machines["web-2"]
    assert web2.ssh == SshEndpoint("10.0.0.6", None, "deploy",
                                   str(Path("~/.ssh/web").expanduser()))
    assert web2.tags["env"] == "canary"  # the host's tag wins over defaults'

    bastion = machines["bastion"]
    assert bastion.ssh == SshEndpoint("bastion", None, "ops", fleet_key)  # host = name
    assert bastion.tags == {"env": "prod", "fleet": ""}

    assert machines["win-build-1"].os is OsType.WINDOWS


def test_the_shipped_example_is_a_valid_inventory() -> None:
    machines = load_toml_inventory(EXAMPLE)
    assert {m.name for m in machines} >= {"web-1", "win-build-1"}
    assert {m.os for m in machines} == {OsType.LINUX, OsType.WINDOWS}


def test_a_written_tag_keeps_its_value_over_a_group_of_the_same_name(tmp_path: Path) -> None:
    text = '[[hosts]]\nname = "a"\ntags = { web = "yes" }\ngroups = ["web"]\n'
    (machine,) = parse_toml_inventory(text, tmp_path / "i.toml")
    assert machine.tags == {"web": "yes"}


def test_os_is_case_insensitive(tmp_path: Path) -> None:
    (machine,) = parse_toml_inventory('[[hosts]]\nname = "a"\nos = "Windows"\n',
                                      tmp_path / "i.toml")
    assert machine.os is OsType.WINDOWS


def test_inline_array_of_hosts_is_read_too(tmp_path: Path) -> None:
    text = 'hosts = [{ name = "a" }, { name = "b", port = 2200 }]\n'
    machines = parse_toml_inventory(text, tmp_path / "i.toml")
    assert [(m.name, m.ssh.port if m.ssh else 0) for m in machines] == [("a", None), ("b", 2200)]


# -- bad input -----------------------------------------------------------------------------

PATH = Path("inv/inventory.toml")


def _error(text: str) -> str:
    with pytest.raises(InventoryError) as caught:
        parse_toml_inventory(text, PATH)
    return str(caught.value)


HOSTS = '[[hosts]]\nname = "a"\n\n[[hosts]]\nname = "b"\n\n[[hosts]]\nname = "c"\n'


@pytest.mark.parametrize(
    ("line", "value", "allowed"),
    [
        ("port = \"abc\"", "'abc'", "use 1 to 65535 (an integer)"),
        ("port = 0", "0", "use 1 to 65535 (an integer)"),
        ("port = 65536", "65536", "use 1 to 65535 (an integer)"),
        ("port = true", "True", "use 1 to 65535 (an integer)"),
        ("port = \"22\"", "'22'", "use 1 to 65535 (an integer)"),
    ],
)
def test_bad_port_names_file_line_field_and_range(line: str, value: str, allowed: str) -> None:
    message = _error(HOSTS + line + "\n")
    assert message == f"{PATH}:9: hosts[2].port: {value} is not allowed; {allowed}"


def test_bad_values_name_their_field() -> None:
    assert _error(HOSTS + 'os = "solaris"\n') == (
        f"{PATH}:9: hosts[2].os: 'solaris' is not allowed; use 'linux', 'windows'")
    assert _error(HOSTS + 'user = ""\n') == (
        f"{PATH}:9: hosts[2].user: '' is not allowed; use a non-empty string without spaces")
    assert _error(HOSTS + 'host = "a b"\n') == (
        f"{PATH}:9: hosts[2].host: 'a b' is not allowed; use a non-empty string without spaces")
    assert _error(HOSTS + 'identity_file = ""\n') == (
        f"{PATH}:9: hosts[2].identity_file: '' is not allowed; use a file path")
    assert _error(HOSTS + 'tags = ["x"]\n').startswith(f"{PATH}:9: hosts[2].tags: a table")
    assert _error(HOSTS + "tags = { n = 1 }\n") == (
        f"{PATH}:9: hosts[2].tags.n: 1 is not allowed; use a string")
    assert _error(HOSTS + 'groups = "web"\n').startswith(f"{PATH}:9: hosts[2].groups: a list")
    assert _error(HOSTS + 'groups = ["web,db"]\n').startswith(
        f"{PATH}:9: hosts[2].groups: 'web,db' is not allowed; use names without spaces")


def test_unknown_keys_list_the_allowed_ones() -> None:
    assert _error(HOSTS + 'hostname = "x"\n') == (
        f"{PATH}:9: hosts[2].hostname: unknown key; allowed: name, host, port, user, "
        "identity_file, os, tags, groups, become, become_user, become_method")
    assert _error('[defaults]\nname = "x"\n' + HOSTS) == (
        f"{PATH}:2: defaults.name: unknown key; allowed: user, port, identity_file, os, "
        "tags, groups, become, become_user, become_method")
    assert _error('[host]\nname = "x"\n') == (
        f"{PATH}: host: unknown key; allowed: defaults, hosts")


def test_bad_defaults_value_names_the_defaults_line() -> None:
    assert _error('# d\n[defaults]\nuser = "ops"\nport = -1\n' + HOSTS) == (
        f"{PATH}:4: defaults.port: -1 is not allowed; use 1 to 65535 (an integer)")


def test_name_is_required_and_has_no_spaces() -> None:
    assert _error('[[hosts]]\nhost = "x"\n') == (
        f"{PATH}:1: hosts[0].name: required: a non-empty string")
    assert _error('[[hosts]]\nname = "web 1"\n') == (
        f"{PATH}:2: hosts[0].name: 'web 1' is not allowed; use a non-empty string without "
        "spaces")


def test_duplicate_names_name_both_places() -> None:
    message = _error(HOSTS + '\n[[hosts]]\nname = "B"\n')
    assert message == (
        f"{PATH}:11: hosts[3].name: 'B' is already the name of hosts[1] (line 5); "
        "names must be unique (case-insensitive)")


def test_no_hosts_is_an_error() -> None:
    assert _error('[defaults]\nuser = "x"\n').startswith(f"{PATH}: no hosts: add a [[hosts]]")
    assert _error("hosts = []\n").startswith(f"{PATH}: no hosts")


def test_shapes_that_are_not_tables() -> None:
    assert _error('hosts = "web"\n') == f"{PATH}: hosts: write one [[hosts]] table per host"
    assert _error('hosts = ["web"]\n') == f"{PATH}: hosts[0]: a table with at least a name"
    assert _error("defaults = 1\n" + HOSTS) == f"{PATH}: defaults: a table, written [defaults]"


def test_inline_hosts_errors_have_no_line_rather_than_a_wrong_one() -> None:
    assert _error('hosts = [{ name = "a", port = 0 }]\n') == (
        f"{PATH}: hosts[0].port: 0 is not allowed; use 1 to 65535 (an integer)")


def test_not_toml_says_where() -> None:
    message = _error('[[hosts]]\nname = "a\n')
    assert message.startswith(f"{PATH}: not valid TOML: ")
    assert "line 2" in message


def test_a_sandbox_fleet_file_is_pointed_to_sandbox() -> None:
    assert _error('[[machines]]\nname = "vm"\nkind = "vm"\n') == (
        f"{PATH}: machines: this looks like a sandbox fleet file; use --fleet sandbox:{PATH}")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InventoryError) as caught:
        load_toml_inventory(tmp_path / "nope.toml")
    assert str(caught.value) == f"{tmp_path / 'nope.toml'}: no such file"
