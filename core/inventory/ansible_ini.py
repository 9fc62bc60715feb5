"""Ansible's INI inventory format, read into an :class:`AnsibleInventory`.

As Ansible reads it: ``[group]`` sections list hosts (``NAME [KEY=VALUE ...]``, shell-like
quoting, ``#`` starts a comment), ``[group:children]`` lists groups nested in it and
``[group:vars]`` has one ``KEY = VALUE`` per line (everything after ``=`` is the value, a
quoted one unquoted, a trailing `` # comment`` dropped). Hosts before the first section are
ungrouped. A group named as a child must be declared somewhere as ``[child]`` or
``[child:children]``, and ``[group:vars]`` needs its group declared too.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

from core.inventory.ansible import AnsibleInventory, Var, host_names

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:[#;].*)?$")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:[#;].*)?$")
_TRAILING_COMMENT = re.compile(r"\s+#.*$")
_KINDS = ("hosts", "children", "vars")


def _unquote(value: str) -> str:
    """A ``[group:vars]`` value: trailing comment dropped, quotes removed."""
    value = _TRAILING_COMMENT.sub("", value).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        try:
            unquoted = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
        return unquoted if isinstance(unquoted, str) else value
    return value


class _IniReader:
    def __init__(self, path: Path) -> None:
        self.inventory = AnsibleInventory(path)
        self.declared: set[str] = {"all", "ungrouped"}
        self.children: list[tuple[str, str, int]] = []
        """(parent, child, line) of every [parent:children] entry, nested at the end."""
        self.vars_sections: dict[str, int] = {}
        """Groups with a [group:vars] section, and its first line."""

    def read(self, text: str) -> AnsibleInventory:
        group, kind = "ungrouped", "hosts"
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            section = _SECTION.match(line)
            if section is not None:
                group, kind = section.group(1), section.group(2) or "hosts"
                self._section(group, kind, number, line)
            elif line.startswith("["):
                raise self.inventory.error(
                    number, line, "not a section header; write [NAME], [NAME:children] "
                    "or [NAME:vars], without spaces",
                )
            elif kind == "hosts":
                self._host_line(group, line, number)
            elif kind == "vars":
                self._var_line(group, line, number)
            else:
                found = _GROUP_NAME.match(line)
                if found is None:
                    raise self.inventory.error(
                        number, f"[{group}:children]",
                        f"{line!r} is not a group name; write one name per line",
                    )
                self.children.append((group, found.group(1), number))
        self._check_declared()
        for parent, child, number in self.children:
            self.inventory.add_child(parent, child, number, f"[{parent}:children]")
        return self.inventory

    def _section(self, group: str, kind: str, number: int, line: str) -> None:
        if kind not in _KINDS:
            raise self.inventory.error(
                number, line,
                f"unknown section type {kind!r}; allowed: [{group}], [{group}:children], "
                f"[{group}:vars]",
            )
        self.inventory.group(group)
        if kind == "vars":
            self.vars_sections.setdefault(group, number)
        else:
            self.declared.add(group)

    def _check_declared(self) -> None:
        for parent, child, number in self.children:
            if child not in self.declared:
                raise self.inventory.error(
                    number, f"[{parent}:children]",
                    f"group {child!r} is not defined; add a [{child}] or [{child}:children] "
                    "section",
                )
        for group, number in self.vars_sections.items():
            if group not in self.declared:
                raise self.inventory.error(
                    number, f"[{group}:vars]",
                    f"group {group!r} is not defined; add a [{group}] or [{group}:children] "
                    "section",
                )

    def _host_line(self, group: str, line: str, number: int) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            raise self.inventory.error(number, f"[{group}]", f"{exc}; close the quote") from None
        if not tokens:
            return
        pattern, *assignments = tokens
        try:
            names, port = host_names(pattern)
        except ValueError as exc:
            raise self.inventory.error(number, pattern, str(exc)) from None
        variables: dict[str, Var] = {}
        if port is not None:
            variables["ansible_port"] = Var(port, number, pattern)
        for assignment in assignments:
            key, sep, value = assignment.partition("=")
            if not sep or not key:
                raise self.inventory.error(
                    number, pattern, f"{assignment!r} is not allowed; host variables are "
                    "KEY=VALUE (quote values with spaces)",
                )
            variables[key] = Var(value, number, f"{pattern}.{key}")
        for name in names:
            self.inventory.add_host(group, name, variables)

    def _var_line(self, group: str, line: str, number: int) -> None:
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or re.search(r"\s", key):
            raise self.inventory.error(
                number, f"[{group}:vars]",
                f"{line!r} is not allowed; write one KEY = VALUE per line",
            )
        self.inventory.group(group).vars[key] = Var(
            _unquote(value), number, f"[{group}:vars].{key}"
        )


def parse_ansible_ini(text: str, path: Path) -> AnsibleInventory:
    """Reads an INI inventory's text (``path`` names it in errors).

    Raises:
        InventoryError: a line is not valid; the error names the line and what is allowed.
    """
    return _IniReader(path).read(text)
