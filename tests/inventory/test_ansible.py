"""Ansible inventories, INI and YAML: groups, children, variables, ranges, as Ansible reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.inventory.ansible import expand_ranges
from core.inventory.ansible_file import load_ansible
from core.inventory.ansible_ini import parse_ansible_ini
from core.inventory.ansible_yaml import parse_ansible_yaml
from core.inventory.errors import InventoryError
from core.model import Machine, MachineKind, OsType, SshEndpoint


def _ini(tmp_path: Path, text: str) -> list[Machine]:
    return parse_ansible_ini(text, tmp_path / "hosts.ini").machines()


def _yaml(tmp_path: Path, text: str) -> list[Machine]:
    return parse_ansible_yaml(text, tmp_path / "hosts.yml").machines()


def test_ini_and_yaml_of_one_inventory_give_the_same_machines(fixtures: Path) -> None:
    from_ini = load_ansible(fixtures / "hosts.ini", yaml=False)
    from_yaml = load_ansible(fixtures / "hosts.yml", yaml=True)
    assert [m.name for m in from_ini] == [
        "jumphost",
        "web01.example.com", "web02.example.com", "web03.example.com",
        "web-canary.example.com",
        "db-a.example.com", "db-b.example.com",
        "win1.example.com", "win3.example.com",
    ]
    assert from_ini == from_yaml


def test_variables_inherit_down_the_groups_and_the_host_wins(fixtures: Path) -> None:
    machines = {m.name: m for m in load_ansible(fixtures / "hosts.ini", yaml=False)}
    app_key = str(Path("~/.ssh/app_key").expanduser())
    prod_key = str(Path("~/.ssh/prod_key").expanduser())

    jump = machines["jumphost"]
    assert jump.id == "ssh:jumphost" and jump.kind is MachineKind.SSH
    assert jump.ssh == SshEndpoint("203.0.113.10", 22, "admin", "")  # port from all:vars
    assert jump.address == "203.0.113.10"
    assert jump.tags == {}  # ungrouped: all and ungrouped are no tags

    # web < app < prod < all: app's user and key beat prod's and all's
    web = machines["web02.example.com"]
    assert web.ssh == SshEndpoint("web02.example.com", 22, "deploy", app_key)
    assert web.tags == {"web": "", "app": "", "prod": ""}  # transitively, as tags
    assert web.os is OsType.LINUX

    canary = machines["web-canary.example.com"]
    assert canary.ssh == SshEndpoint("web-canary.example.com", 2222, "canary", app_key)

    assert machines["db-b.example.com"].ssh == SshEndpoint("10.0.2.11", 22, "deploy", app_key)

    win = machines["win3.example.com"]
    assert win.os is OsType.WINDOWS  # ansible_connection=winrm
    assert win.ssh == SshEndpoint("win3.example.com", 22, "Administrator", prod_key)
    assert win.tags == {"windows": "", "prod": ""}


def test_ranges_expand_as_ansible_does() -> None:
    assert expand_ranges("web[01:03].x") == ["web01.x", "web02.x", "web03.x"]
    assert expand_ranges("web[8:10]") == ["web8", "web9", "web10"]
    assert expand_ranges("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand_ranges("n[1:9:4]") == ["n1", "n5", "n9"]
    assert expand_ranges("n[:2]") == ["n0", "n1", "n2"]
    assert expand_ranges("r[1:2]-[a:b]") == ["r1-a", "r1-b", "r2-a", "r2-b"]
    assert expand_ranges("plain.example.com") == ["plain.example.com"]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ("ansible_connection=winrm", OsType.WINDOWS),
        ("ansible_connection=psrp", OsType.WINDOWS),
        ("ansible_shell_type=powershell", OsType.WINDOWS),
        ("ansible_shell_type=cmd", OsType.WINDOWS),
        ("ansible_os_family=Windows", OsType.WINDOWS),
        ("ansible_connection=ssh ansible_shell_type=sh", OsType.LINUX),
        ("ansible_os_family=Debian", OsType.LINUX),
        ("", OsType.LINUX),
    ],
)
def test_windows_is_told_by_connection_shell_or_os_family(
    tmp_path: Path, variables: str, expected: OsType
) -> None:
    (machine,) = _ini(tmp_path, f"[g]\nh {variables}\n")
    assert machine.os is expected


def test_older_variable_names_and_the_newer_ones_win(tmp_path: Path) -> None:
    (old,) = _ini(tmp_path, "o ansible_ssh_host=1.2.3.4 ansible_ssh_port=2200 "
                            "ansible_ssh_user=u ansible_private_key_file=/k\n")
    assert old.ssh == SshEndpoint("1.2.3.4", 2200, "u", "/k")
    (both,) = _ini(tmp_path, "b ansible_ssh_host=old ansible_host=new ansible_user=n "
                             "ansible_ssh_user=o\n")
    assert both.ssh == SshEndpoint("new", None, "n", "")


def test_a_host_in_two_groups_is_one_machine_with_both_tags(tmp_path: Path) -> None:
    machines = _ini(tmp_path, "[a]\nh ansible_user=first\n[b]\nh ansible_port=2\n")
    assert [(m.name, dict(m.tags)) for m in machines] == [("h", {"a": "", "b": ""})]
    assert machines[0].ssh == SshEndpoint("h", 2, "first", "")


def test_siblings_at_one_depth_go_by_priority_then_name(tmp_path: Path) -> None:
    text = "[a]\nh\n[b]\nh\n[a:vars]\nansible_user=from_a\n[b:vars]\nansible_user=from_b\n"
    assert _ini(tmp_path, text)[0].ssh == SshEndpoint("h", None, "from_b", "")
    raised = text + "[a:vars]\nansible_group_priority=5\n"
    assert _ini(tmp_path, raised)[0].ssh == SshEndpoint("h", None, "from_a", "")


def test_ini_sections_may_come_before_the_groups_they_name(tmp_path: Path) -> None:
    text = "[top:vars]\nansible_user=t\n[top:children]\nmid\n[mid]\nh\n[top]\n"
    (machine,) = _ini(tmp_path, text)
    assert machine.tags == {"top": "", "mid": ""}
    assert machine.ssh == SshEndpoint("h", None, "t", "")


def test_ini_values_quoting_and_comments(tmp_path: Path) -> None:
    text = ("[g]\nh ansible_user='o p' ansible_host=\"1.2.3.4\"  # trailing\n"
            "[g:vars]\nansible_ssh_private_key_file = '/keys/a b'  # why\n")
    (machine,) = _ini(tmp_path, text)
    assert machine.ssh == SshEndpoint("1.2.3.4", None, "o p", "/keys/a b")


def test_yaml_merge_keys_and_empty_groups(tmp_path: Path) -> None:
    text = ("all:\n  vars: &base {ansible_user: u, ansible_port: 2022}\n  children:\n"
            "    empty:\n    g:\n      vars:\n        <<: *base\n        ansible_port: 22\n"
            "      hosts:\n        h:\n")
    (machine,) = _yaml(tmp_path, text)
    assert machine.ssh == SshEndpoint("h", 22, "u", "")
    assert machine.tags == {"g": ""}


def test_yaml_top_level_groups_other_than_all(tmp_path: Path) -> None:
    machines = _yaml(tmp_path, "web:\n  hosts:\n    w1:\ndb:\n  hosts:\n    d1:\n")
    assert [(m.name, dict(m.tags)) for m in machines] == [("w1", {"web": ""}),
                                                          ("d1", {"db": ""})]


# -- bad input: INI ------------------------------------------------------------------------


def _ini_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as caught:
        _ini(tmp_path, text)
    return str(caught.value).replace(str(tmp_path / "hosts.ini"), "hosts.ini")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[web servers]\nh\n", "hosts.ini:1: [web servers]: not a section header; write "
         "[NAME], [NAME:children] or [NAME:vars], without spaces"),
        ("[web:host]\nh\n", "hosts.ini:1: [web:host]: unknown section type 'host'; allowed: "
         "[web], [web:children], [web:vars]"),
        ("[a]\nh\n[p:children]\na\nmissing\n", "hosts.ini:5: [p:children]: group 'missing' "
         "is not defined; add a [missing] or [missing:children] section"),
        ("[a]\nh\n[b:vars]\nx=1\n", "hosts.ini:3: [b:vars]: group 'b' is not defined; add a "
         "[b] or [b:children] section"),
        ("[a]\nh\n[p:children]\na b\n", "hosts.ini:4: [p:children]: 'a b' is not a group "
         "name; write one name per line"),
        ("[a]\nh user\n", "hosts.ini:2: h: 'user' is not allowed; host variables are "
         "KEY=VALUE (quote values with spaces)"),
        ("[a]\nh\n[a:vars]\njust text\n", "hosts.ini:4: [a:vars]: 'just text' is not "
         "allowed; write one KEY = VALUE per line"),
        ("[a]\nweb[3:1]\n", "hosts.ini:2: web[3:1]: [3:1]: the start is after the end"),
        ("[a]\nweb[01:3]\n", "hosts.ini:2: web[01:3]: [01:3]: a zero-padded start needs an "
         "end of the same width"),
        ("[a]\nweb[1:5:0]\n", "hosts.ini:2: web[1:5:0]: [1:5:0]: the step '0' is not "
         "allowed; use 1 or more"),
        ("[a]\nweb[a:10]\n", "hosts.ini:2: web[a:10]: [a:10] is not a range; use "
         "[START:END] or [START:END:STEP] with numbers ([01:12]) or letters ([a:f])"),
        ("[a]\nweb[1:2\n", "hosts.ini:2: web[1:2: '[' without ']'; write ranges as "
         "[START:END]"),
        ("[a]\nweb[0:100000]\n", "hosts.ini:2: web[0:100000]: [0:100000] expands to more "
         "than 100000 hosts"),
        ("[a]\nweb:70000\n", "hosts.ini:2: web:70000: port '70000' is not allowed; use 1 to "
         "65535"),
        ("[a]\nweb:\n", "hosts.ini:2: web:: a host name cannot end in ':'; write NAME or "
         "NAME:PORT"),
    ],
)
def test_ini_errors_name_the_line_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert _ini_error(tmp_path, text) == expected


def test_ini_unclosed_quote(tmp_path: Path) -> None:
    message = _ini_error(tmp_path, "[a]\nh ansible_user='x\n")
    assert message.startswith("hosts.ini:2: [a]: ") and message.endswith("close the quote")


def test_bad_variable_values_name_where_they_were_set(tmp_path: Path) -> None:
    assert _ini_error(tmp_path, "[a]\nh\n[a:vars]\nansible_port=ssh\n") == (
        "hosts.ini:4: [a:vars].ansible_port: 'ssh' is not allowed; use 1 to 65535")
    assert _ini_error(tmp_path, "[a]\nh ansible_port=0\n") == (
        "hosts.ini:2: h.ansible_port: '0' is not allowed; use 1 to 65535")
    assert _ini_error(tmp_path, "h ansible_host='{{ inventory_hostname }}.x'\n") == (
        "hosts.ini:1: h.ansible_host: '{{ inventory_hostname }}.x': templates are not "
        "evaluated by fleetrun; write the value")
    assert _ini_error(tmp_path, "[a]\nh\n[a:vars]\nansible_group_priority=high\n") == (
        "hosts.ini:4: [a:vars].ansible_group_priority: 'high' is not allowed; use an integer")


def test_ini_children_loops_are_errors(tmp_path: Path) -> None:
    text = "[a]\nh\n[b:children]\na\n[a:children]\nb\n"
    assert _ini_error(tmp_path, text) == (
        "hosts.ini:6: [a:children]: 'b' already contains 'a'; nesting it there makes a loop")
    assert _ini_error(tmp_path, "[a]\nh\n[a:children]\na\n") == (
        "hosts.ini:4: [a:children]: 'a' already contains 'a'; nesting it there makes a loop")
    assert _ini_error(tmp_path, "[a]\nh\n[a:children]\nall\n") == (
        "hosts.ini:4: [a:children]: 'all' holds every group; it cannot be a child")


def test_ini_without_hosts(tmp_path: Path) -> None:
    assert _ini_error(tmp_path, "[a]\n[a:vars]\nx=1\n") == (
        "hosts.ini: no hosts: no group lists a host")


# -- bad input: YAML -----------------------------------------------------------------------


def _yaml_error(tmp_path: Path, text: str) -> str:
    with pytest.raises(InventoryError) as caught:
        _yaml(tmp_path, text)
    return str(caught.value).replace(str(tmp_path / "hosts.yml"), "hosts.yml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all:\n  host:\n    h:\n", "hosts.yml:2: all.host: unknown key; allowed: children, "
         "hosts, vars"),
        ("all:\n  hosts:\n    - h1\n    - h2\n", "hosts.yml:2: all.hosts: a list is not "
         "allowed; hosts is a mapping of names (or nothing)"),
        ("all:\n  vars: [a]\n  hosts:\n    h:\n", "hosts.yml:2: all.vars: a list is not "
         "allowed; vars is a mapping of names (or nothing)"),
        ("all:\n  hosts:\n    h: web\n", "hosts.yml:3: all.hosts.h: the text 'web' is not "
         "allowed; a host maps to its variables (or nothing)"),
        ("all:\n  children:\n    web: [h]\n", "hosts.yml:3: all.children.web: a group is a "
         "mapping with hosts, children or vars (or nothing)"),
        ("- all\n", "hosts.yml:1: top level: a mapping of group names, e.g. 'all:' with "
         "hosts and children"),
        ("all:\n  children:\n    123:\n", "hosts.yml:3: all.children.123: 123 is not "
         "allowed as a group name"),
        ("all:\n  hosts:\n    yes:\n", "hosts.yml:3: all.hosts.True: not allowed as a host "
         "name"),
        ("all:\n  hosts:\n    web[1:0]:\n", "hosts.yml:3: all.hosts.web[1:0]: [1:0]: the "
         "start is after the end"),
        ("all:\n  hosts:\n    h:\n      ansible_port: 99999\n", "hosts.yml:4: "
         "all.hosts.h.ansible_port: 99999 is not allowed; use 1 to 65535"),
        ("all:\n  hosts:\n    h:\n      ansible_user: [a, b]\n", "hosts.yml:4: "
         "all.hosts.h.ansible_user: ['a', 'b'] is not allowed; use a string"),
        ("all:\n  children:\n    g:\n      vars:\n        ansible_port: x\n      hosts:\n"
         "        h:\n", "hosts.yml:5: all.children.g.vars.ansible_port: 'x' is not allowed; "
         "use 1 to 65535"),
        ("", "hosts.yml: no hosts: no group lists a host"),
        ("all:\n  children:\n    web:\n", "hosts.yml: no hosts: no group lists a host"),
    ],
)
def test_yaml_errors_name_the_line_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert _yaml_error(tmp_path, text) == expected


def test_not_yaml_says_where(tmp_path: Path) -> None:
    message = _yaml_error(tmp_path, "all:\n  hosts:\n    h: {a: 1\n  x: 2\n")
    assert message.startswith("hosts.yml:4: not valid YAML: ")


def test_yaml_children_loops_are_errors(tmp_path: Path) -> None:
    text = "a:\n  children:\n    b:\n      hosts:\n        h:\nb:\n  children:\n    a:\n"
    assert _yaml_error(tmp_path, text) == (
        "hosts.yml:8: b.children.a: 'a' already contains 'b'; nesting it there makes a loop")
