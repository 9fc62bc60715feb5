"""fleetrun's own SSH inventory: a TOML file of hosts (``--fleet hosts.toml``).

The format, with every key (``inventory.example.toml`` beside this module is a commented
copy to start from)::

    [defaults]                      # optional; what every host has unless it says otherwise
    user = "ops"
    port = 22
    identity_file = "~/.ssh/id_ed25519"
    os = "linux"                    # "linux" (the default) or "windows"
    tags = { env = "prod" }         # merged under each host's tags
    groups = ["fleet"]              # added to each host's groups

    [[hosts]]                       # one table per host
    name = "web-1"                  # required, unique (case-insensitive); id ssh:web-1
    host = "10.0.0.5"               # what ssh connects to; default: the name
    port = 2222                     # 1 to 65535; default: the ssh config's, then 22
    user = "deploy"                 # default: the ssh config's, then your user name
    identity_file = "~/.ssh/web"    # ~ expanded; relative to this file's folder
    os = "linux"
    tags = { role = "web" }         # string values
    groups = ["web", "eu"]          # each a tag with an empty value: --target tag:web
    become = true                   # run scripts through sudo/su (also in [defaults])
    become_user = "root"            # the default with become; --run-as USER wins
    become_method = "sudo"          # "sudo" (default) or "su"; --become-method wins

Empty ``user``, ``port`` and ``identity_file`` leave the choice to the ssh config of
``host`` (which may be an alias there). Unknown keys are errors, as are duplicate names.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from core.field_names import shown_key
from core.inventory.errors import InventoryError
from core.inventory.ssh_hosts import (
    PORT_ALLOWED,
    inventory_error,
    no_hosts_error,
    read_text,
    ssh_machine,
    user_path,
)
from core.model import Machine, OsType
from core.toml_text import parse_toml

BECOME_KEYS = ("become", "become_user", "become_method")
HOST_KEYS = ("name", "host", "port", "user", "identity_file", "os", "tags", "groups",
             *BECOME_KEYS)
DEFAULT_KEYS = ("user", "port", "identity_file", "os", "tags", "groups", *BECOME_KEYS)
TOP_KEYS = ("defaults", "hosts")

_HOSTS_HEADER = re.compile(r"^\s*\[\[\s*hosts\s*\]\]")
_DEFAULTS_HEADER = re.compile(r"^\s*\[\s*defaults\s*\]")
_ANY_HEADER = re.compile(r"^\s*\[")
_BAD_NAME = re.compile(r"[\s\x00-\x1f\x7f]")
_BAD_GROUP = re.compile(r'[\s,="\x00-\x1f\x7f]')
_OS_ALLOWED = ", ".join(repr(o.value) for o in OsType)


class _Lines:
    """Where tables and keys are in the text (tomllib keeps no positions), when findable."""

    def __init__(self, text: str, host_count: int) -> None:
        self._lines = text.splitlines()
        hosts = [i for i, line in enumerate(self._lines) if _HOSTS_HEADER.match(line)]
        # Hosts written as an inline array have no headers: then no line is better than a
        # wrong one.
        self._hosts = hosts if len(hosts) == host_count else []
        self._defaults = next(
            (i for i, line in enumerate(self._lines) if _DEFAULTS_HEADER.match(line)), None
        )

    def table(self, index: int | None) -> int | None:
        """The 0-based line of ``hosts[index]``'s header (``[defaults]`` for None)."""
        if index is None:
            return self._defaults
        return self._hosts[index] if index < len(self._hosts) else None

    def line(self, index: int | None, key: str = "") -> int | None:
        """The 1-based line of ``key`` in that table, else of the table's header."""
        start = self.table(index)
        if start is None:
            return None
        if key:
            top = key.split(".", 1)[0]  # tags.env is on the line of tags = {...}
            wanted = re.compile(rf'^\s*"?{re.escape(top)}"?\s*[=.]')
            for i in range(start + 1, len(self._lines)):
                if _ANY_HEADER.match(self._lines[i]):
                    break
                if wanted.match(self._lines[i]):
                    return i + 1
        return start + 1


class _Checker:
    """Checks one table's keys, with errors that say where and what is allowed."""

    def __init__(self, path: Path, lines: _Lines, index: int | None, table: Mapping[str, Any]):
        self.path = path
        self.lines = lines
        self.index = index
        self.table = table
        self.prefix = "defaults" if index is None else f"hosts[{index}]"

    def error(self, key: str, message: str) -> InventoryError:
        field = f"{self.prefix}.{key}" if key else self.prefix
        return inventory_error(self.path, self.lines.line(self.index, key), field, message)

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.error(shown_key(key), f"unknown key; allowed: {', '.join(allowed)}")

    def text(self, key: str, *, required: bool = False) -> str:
        value = self.table.get(key)
        if value is None:
            if required:
                raise self.error(key, "required: a non-empty string")
            return ""
        if not isinstance(value, str) or not value or _BAD_NAME.search(value):
            raise self.error(key, f"{value!r} is not allowed; use a non-empty string "
                                  "without spaces")
        return value

    def become(self) -> bool | None:
        value = self.table.get("become")
        if value is not None and not isinstance(value, bool):
            raise self.error("become", f"{value!r} is not allowed; use true or false")
        return value

    def become_method(self) -> str:
        value = self.text("become_method")
        if value not in ("", "sudo", "su"):
            raise self.error("become_method", f"{value!r} is not allowed; use 'sudo' or 'su'")
        return value

    def port(self) -> int | None:
        value = self.table.get("port")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.error("port", f"{value!r} is not allowed; {PORT_ALLOWED} (an integer)")
        return value

    def identity_file(self) -> str:
        value = self.table.get("identity_file")
        if value is None:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.error("identity_file", f"{value!r} is not allowed; use a file path")
        line = self.lines.line(self.index, "identity_file")
        where = f"{self.prefix}.identity_file"
        return os.path.abspath(self.path.parent / user_path(value, self.path, line, where))

    def os_type(self) -> OsType | None:
        value = self.table.get("os")
        if value is None:
            return None
        if isinstance(value, str):
            for os_type in OsType:
                if value.lower() == os_type.value:
                    return os_type
        raise self.error("os", f"{value!r} is not allowed; use {_OS_ALLOWED}")

    def tags(self) -> dict[str, str]:
        value = self.table.get("tags")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error("tags", "a table of strings, e.g. tags = { env = \"prod\" }")
        for name, tag in value.items():
            if not name or not isinstance(tag, str):
                raise self.error(f"tags.{shown_key(name)}", f"{tag!r} is not allowed; use a "
                                 "string")
        return dict(value)

    def groups(self) -> list[str]:
        value = self.table.get("groups")
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error("groups", 'a list of group names, e.g. groups = ["web", "eu"]')
        for group in value:
            if not isinstance(group, str) or not group or _BAD_GROUP.search(group):
                raise self.error("groups", f"{group!r} is not allowed; use names without "
                                           'spaces, commas, "=" or quotes')
        return list(value)


def parse_toml_inventory(text: str, path: Path) -> list[Machine]:
    """The machines of an inventory's text; ``path`` names it in errors and anchors paths.

    Raises:
        InventoryError: the text is not TOML, or a key is unknown, missing or not allowed.
    """
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise InventoryError(f"{path}: not valid TOML: {exc}") from None
    if "machines" in data and "hosts" not in data:
        raise InventoryError(f"{path}: machines: this looks like a sandbox fleet file; "
                         f"use --fleet sandbox:{path}")
    for key in data:
        if key not in TOP_KEYS:
            raise InventoryError(f"{path}: {shown_key(key)}: unknown key; allowed: "
                             f"{', '.join(TOP_KEYS)}")
    hosts = data.get("hosts")
    if hosts is None or hosts == []:
        raise no_hosts_error(path, "add a [[hosts]] table for each host (name = \"...\")")
    if not isinstance(hosts, list):
        raise InventoryError(f"{path}: hosts: write one [[hosts]] table per host")
    lines = _Lines(text, len(hosts))
    defaults_table = data.get("defaults", {})
    if not isinstance(defaults_table, dict):
        raise InventoryError(f"{path}: defaults: a table, written [defaults]")
    defaults = _Checker(path, lines, None, defaults_table)
    defaults.only(DEFAULT_KEYS)
    user, port, identity_file = defaults.text("user"), defaults.port(), defaults.identity_file()
    os_type, tags, groups = defaults.os_type() or OsType.LINUX, defaults.tags(), defaults.groups()
    become, become_user = defaults.become(), defaults.text("become_user")
    become_method = defaults.become_method()
    machines: list[Machine] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(hosts):
        if not isinstance(table, dict):
            raise InventoryError(f"{path}: hosts[{index}]: a table with at least a name")
        host = _Checker(path, lines, index, table)
        host.only(HOST_KEYS)
        name = host.text("name", required=True)
        if name.lower() in seen:
            first = seen[name.lower()]
            at = lines.line(first, "name")
            place = f"hosts[{first}]" + (f" (line {at})" if at is not None else "")
            raise host.error("name", f"{name!r} is already the name of {place}; "
                                     "names must be unique (case-insensitive)")
        seen[name.lower()] = index
        machine = ssh_machine(
            name,
            host=host.text("host") or name,
            port=host.port() or port,
            user=host.text("user") or user,
            identity_file=host.identity_file() or identity_file,
            os_type=host.os_type() or os_type,
            tags={**tags, **host.tags()},
            groups=dict.fromkeys([*groups, *host.groups()]),
        )
        host_become = host.become()
        if (become if host_become is None else host_become) and machine.ssh is not None:
            # As Ansible: become without a user means root; sudo unless the method says su.
            machine = replace(machine, ssh=replace(
                machine.ssh, become_user=host.text("become_user") or become_user or "root",
                become_method=host.become_method() or become_method))
        machines.append(machine)
    return machines


def load_toml_inventory(path: Path) -> list[Machine]:
    """The machines of a TOML inventory file.

    Raises:
        InventoryError: the file cannot be read or is not a valid inventory.
    """
    return parse_toml_inventory(read_text(path), path)
