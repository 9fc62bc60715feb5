"""Ansible inventories (INI and YAML) as SSH machines: groups, children, variables.

Both formats build the same :class:`AnsibleInventory` (``ansible_ini`` and ``ansible_yaml``
read them), which resolves each host as Ansible does:

- groups nest (``[web:children]``, ``children:``); a host belongs to its groups and to
  every group above them. All of them except ``all`` and ``ungrouped`` become tags with an
  empty value (``--target tag:web``).
- variables: ``all``'s first, then each group's from the top down (by depth, then
  ``ansible_group_priority``, then name, as Ansible sorts them), then the host's own: the
  deeper group and the host win.
- host patterns expand ranges: ``web[01:03]`` (zero-padded), ``db[a:c]``, ``[1:10:2]``
  (a step), several per name; ``name:PORT`` sets the port.

Variables read: ``ansible_host``, ``ansible_port``, ``ansible_user``,
``ansible_ssh_private_key_file`` (or ``ansible_private_key_file``; ``~`` expanded, relative
paths stay relative to where fleetrun runs, as for Ansible), the older ``ansible_ssh_host``,
``ansible_ssh_port`` and ``ansible_ssh_user``, and, for the OS, ``ansible_connection``
(``winrm``/``psrp``), ``ansible_shell_type`` (``powershell``/``cmd``) and
``ansible_os_family`` (``Windows``): any of those makes a host Windows. ``ansible_become``
(with ``ansible_become_user``, default root, and ``ansible_become_method``, sudo or su) runs
the host's scripts through sudo/su. Templates
(``{{ ... }}``) in these are not evaluated: they are errors. Other variables are ignored.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.inventory.errors import InventoryError
from core.inventory.ssh_hosts import (
    PORT_ALLOWED,
    inventory_error,
    no_hosts_error,
    parse_port,
    ssh_machine,
    user_path,
)
from core.model import Machine, OsType

MAX_EXPANSION = 100_000
"""Hosts one pattern may expand to: a typo such as [1:1000000] is an error, not a hang."""

IMPLICIT_GROUPS = ("all", "ungrouped")

_WINDOWS_CONNECTIONS = frozenset({"winrm", "psrp"})
_WINDOWS_SHELLS = frozenset({"powershell", "cmd"})


@dataclass(frozen=True, slots=True)
class Var:
    """A variable's value and where it was set (for errors)."""

    value: object
    line: int | None
    field: str


@dataclass(slots=True)
class _Group:
    name: str
    vars: dict[str, Var] = field(default_factory=dict)
    parents: dict[str, None] = field(default_factory=dict)
    """Direct parents, in order (``all`` implied for groups with none)."""


@dataclass(slots=True)
class _Host:
    name: str
    vars: dict[str, Var] = field(default_factory=dict)
    groups: dict[str, None] = field(default_factory=dict)


class AnsibleInventory:
    """Groups, hosts and variables, built by a reader and resolved to machines.

    Args:
        path: The inventory file, named in errors.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.groups: dict[str, _Group] = {name: _Group(name) for name in IMPLICIT_GROUPS}
        self.hosts: dict[str, _Host] = {}

    def error(self, line: int | None, field_name: str, message: str) -> InventoryError:
        return inventory_error(self.path, line, field_name, message)

    def group(self, name: str) -> _Group:
        """The group of that name, created if new."""
        return self.groups.setdefault(name, _Group(name))

    def add_child(self, parent: str, child: str, line: int | None, field_name: str) -> None:
        """Nests ``child`` in ``parent``; a loop is an error."""
        if child == "all":
            raise self.error(line, field_name, "'all' holds every group; it cannot be a child")
        if child == parent or child in self._ancestors(parent):
            raise self.error(
                line, field_name,
                f"{child!r} already contains {parent!r}; nesting it there makes a loop",
            )
        self.group(parent)
        self.group(child).parents[parent] = None

    def add_host(self, group: str, name: str, variables: Mapping[str, Var]) -> None:
        """Puts a host in a group; a host seen again keeps one entry, later vars winning."""
        host = self.hosts.setdefault(name, _Host(name))
        self.group(group)
        host.groups["ungrouped" if group == "all" else group] = None
        host.vars.update(variables)

    def _ancestors(self, name: str) -> dict[str, None]:
        found: dict[str, None] = {}
        todo = list(self.groups[name].parents) if name in self.groups else []
        while todo:
            parent = todo.pop()
            if parent not in found:
                found[parent] = None
                todo.extend(self.groups[parent].parents)
        return found

    def _depth(self, name: str, memo: dict[str, int]) -> int:
        if name == "all":
            return 0
        if name not in memo:
            parents = self.groups[name].parents or {"all": None}
            memo[name] = 1 + max(self._depth(p, memo) for p in parents)
        return memo[name]

    def _priority(self, group: _Group) -> int:
        var = group.vars.get("ansible_group_priority")
        if var is None:
            return 1
        if isinstance(var.value, int) and not isinstance(var.value, bool):
            return var.value
        if isinstance(var.value, str) and var.value.strip().lstrip("-").isdigit():
            return int(var.value)
        raise self.error(var.line, var.field, f"{var.value!r} is not allowed; use an integer")

    def machines(self) -> list[Machine]:
        """Every host as an SSH machine, in the order hosts first appear.

        Raises:
            InventoryError: no hosts, or a variable fleetrun reads has a value it cannot use.
        """
        if not self.hosts:
            raise no_hosts_error(self.path, "no group lists a host")
        memo: dict[str, int] = {}
        machines: list[Machine] = []
        for host in self.hosts.values():
            member_of: dict[str, None] = {"all": None}
            for group in host.groups:
                member_of[group] = None
                member_of.update(self._ancestors(group))
            ordered = sorted(
                (self.groups[g] for g in member_of),
                key=lambda g: (self._depth(g.name, memo), self._priority(g), g.name),
            )
            merged: dict[str, Var] = {}
            for group_ in ordered:
                merged.update(group_.vars)
            merged.update(host.vars)
            tags = sorted(g for g in member_of if g not in IMPLICIT_GROUPS)
            machines.append(self._machine(host.name, merged, tags))
        return machines

    def _machine(self, name: str, merged: Mapping[str, Var], groups: list[str]) -> Machine:
        host = self._text(merged, "ansible_host", "ansible_ssh_host")
        port_var = merged.get("ansible_port") or merged.get("ansible_ssh_port")
        port = None
        if port_var is not None:
            port = parse_port(port_var.value)
            if port is None:
                raise self.error(
                    port_var.line, port_var.field,
                    f"{port_var.value!r} is not allowed; {PORT_ALLOWED}",
                )
        key_names = ("ansible_ssh_private_key_file", "ansible_private_key_file")
        key, key_var = self._text(merged, *key_names), _first(merged, *key_names)
        identity_file = "" if not key or key_var is None else str(
            user_path(key, self.path, key_var.line, key_var.field))
        windows = (
            self._text(merged, "ansible_connection").lower() in _WINDOWS_CONNECTIONS
            or self._text(merged, "ansible_shell_type").lower() in _WINDOWS_SHELLS
            or self._text(merged, "ansible_os_family").lower() == "windows"
        )
        become_user, become_method = "", ""
        if self._flag(merged, "ansible_become"):
            become_user = self._text(merged, "ansible_become_user") or "root"
            become_method = self._text(merged, "ansible_become_method").lower()
            method_var = merged.get("ansible_become_method")
            if become_method not in ("", "sudo", "su") and method_var is not None:
                raise self.error(method_var.line, method_var.field,
                                 f"{become_method!r} is not allowed; use sudo or su")
        machine = ssh_machine(
            name,
            host=host or name,
            port=port,
            user=self._text(merged, "ansible_user", "ansible_ssh_user"),
            identity_file=identity_file,
            os_type=OsType.WINDOWS if windows else OsType.LINUX,
            groups=groups,
        )
        if not become_user or machine.ssh is None:
            return machine
        return replace(machine, ssh=replace(machine.ssh, become_user=become_user,
                                            become_method=become_method))

    def _flag(self, merged: Mapping[str, Var], name: str) -> bool:
        """A boolean variable as Ansible reads one (true/yes/on/1, false/no/off/0)."""
        var = merged.get(name)
        if var is None:
            return False
        if isinstance(var.value, bool):
            return var.value
        text = str(var.value).strip().lower()
        if text in ("true", "yes", "on", "1", "y", "t"):
            return True
        if text in ("false", "no", "off", "0", "n", "f", ""):
            return False
        raise self.error(var.line, var.field, f"{var.value!r} is not allowed; use true or false")

    def _text(self, merged: Mapping[str, Var], *names: str) -> str:
        """The first of ``names`` that is set, as text ("" when none is)."""
        var = _first(merged, *names)
        if var is None:
            return ""
        value = var.value
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(var.line, var.field, f"{value!r} is not allowed; use a string")
        text = str(value).strip()
        if "{{" in text or "{%" in text:
            raise self.error(
                var.line, var.field,
                f"{text!r}: templates are not evaluated by fleetrun; write the value",
            )
        return text


def _first(merged: Mapping[str, Var], *names: str) -> Var | None:
    """The first of ``names`` that is set to something (YAML's ``~`` is not set)."""
    return next((var for name in names
                 if (var := merged.get(name)) is not None and var.value is not None), None)


def expand_ranges(pattern: str) -> list[str]:
    """The host names of a pattern with Ansible ranges, in order.

    ``[START:END]`` or ``[START:END:STEP]``: numbers (a zero-padded start pads every name
    to its width; an empty start is 0) or single letters. Several ranges multiply.

    Raises:
        ValueError: a bracket is not a valid range; the message says what is allowed.
    """
    start = pattern.find("[")
    if start < 0:
        if "]" in pattern:
            raise ValueError("']' without '['; write ranges as [START:END]")
        return [pattern]
    end = pattern.find("]", start)
    if end < 0:
        raise ValueError("'[' without ']'; write ranges as [START:END]")
    head, body, tail = pattern[:start], pattern[start + 1 : end], pattern[end + 1 :]
    values = _range_values(body)
    names: list[str] = []
    for value in values:
        names.extend(expand_ranges(head + value + tail))
        if len(names) > MAX_EXPANSION:
            raise ValueError(f"expands to more than {MAX_EXPANSION} hosts")
    return names


def _range_values(body: str) -> list[str]:
    allowed = "use [START:END] or [START:END:STEP] with numbers ([01:12]) or letters ([a:f])"
    bounds = body.split(":")
    if len(bounds) not in (2, 3) or not bounds[1]:
        raise ValueError(f"[{body}] is not a range; {allowed}")
    first, last = bounds[0] or "0", bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not step_text.isdigit() or int(step_text) < 1:
        raise ValueError(f"[{body}]: the step {step_text!r} is not allowed; use 1 or more")
    step = int(step_text)
    if first.isdigit() and last.isdigit():
        if int(first) > int(last):
            raise ValueError(f"[{body}]: the start is after the end")
        width = len(first) if first.startswith("0") and len(first) > 1 else 0
        if width and len(last) != width:
            raise ValueError(f"[{body}]: a zero-padded start needs an end of the same width")
        if (int(last) - int(first)) // step >= MAX_EXPANSION:
            raise ValueError(f"[{body}] expands to more than {MAX_EXPANSION} hosts")
        return [str(n).zfill(width) for n in range(int(first), int(last) + 1, step)]
    letters = string.ascii_letters
    if len(first) == 1 and len(last) == 1 and first in letters and last in letters:
        if letters.index(first) > letters.index(last):
            raise ValueError(f"[{body}]: the start is after the end")
        return list(letters[letters.index(first) : letters.index(last) + 1 : step])
    raise ValueError(f"[{body}] is not a range; {allowed}")


def split_port(pattern: str) -> tuple[str, int | None]:
    """``name:PORT`` to (name, port); a bare IPv6 address has no port.

    Raises:
        ValueError: the pattern ends in ``:`` or the port is out of range.
    """
    if pattern.endswith(":"):
        raise ValueError("a host name cannot end in ':'; write NAME or NAME:PORT")
    head, sep, tail = pattern.rpartition(":")
    outside_brackets = "".join(part.split("]")[-1] for part in head.split("["))
    if not sep or not tail.isdigit() or ":" in outside_brackets:
        return pattern, None
    port = parse_port(tail)
    if port is None:
        raise ValueError(f"port {tail!r} is not allowed; {PORT_ALLOWED}")
    return head, port


def host_names(pattern: str) -> tuple[list[str], int | None]:
    """The hosts a pattern names and the port it sets (``web[1:3]:2222``).

    Raises:
        ValueError: a range or port is not valid.
    """
    name, port = split_port(pattern.strip())
    if not name:
        raise ValueError("an empty host name")
    return expand_ranges(name), port
