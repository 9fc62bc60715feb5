"""Ansible's YAML inventory format, read into an :class:`AnsibleInventory`.

As Ansible reads it: the top level maps group names (usually just ``all``) to groups; a
group has ``hosts`` (host patterns mapped to their variables, or to nothing), ``vars`` and
``children`` (more groups, nested the same way), each optional. A group written in two
places is one group; so is a host. Anything else in a group is an error naming its line.

Needs PyYAML (imported only when a YAML inventory is read).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.field_names import shown_key
from core.inventory.ansible import AnsibleInventory, Var, host_names
from core.inventory.errors import InventoryError

if TYPE_CHECKING:
    import yaml

_GROUP_KEYS = ("children", "hosts", "vars")


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its line and each key's (1-based)."""

    line: int = 0
    key_lines: dict[Any, int]

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


def _loader() -> type[yaml.SafeLoader]:
    import yaml

    class LineLoader(yaml.SafeLoader):
        pass

    def construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Iterator[_Map]:
        data = _Map()
        data.line = node.start_mark.line + 1
        data.key_lines = {}
        yield data
        data.update(loader.construct_mapping(node))  # merges (<<) are flattened here
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if isinstance(key_node, yaml.ScalarNode):
                data.key_lines[key] = key_node.start_mark.line + 1

    LineLoader.add_constructor("tag:yaml.org,2002:map", construct_map)
    return LineLoader


def _load(text: str, path: Path) -> object:
    try:
        import yaml
    except ImportError:
        raise InventoryError(
            f"{path}: reading a YAML inventory needs PyYAML; install it or use the INI format"
        ) from None
    try:
        return yaml.load(text, Loader=_loader())  # a SafeLoader subclass: no arbitrary objects
    except RecursionError:
        raise InventoryError(f"{path}: not valid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line
        raise InventoryError(f"{path}{line}: not valid YAML: {problem}") from None


class _YamlReader:
    def __init__(self, path: Path) -> None:
        self.inventory = AnsibleInventory(path)

    def read(self, data: object) -> AnsibleInventory:
        if data is None:
            return self.inventory  # no hosts: machines() says so
        if not isinstance(data, _Map):
            raise self.inventory.error(
                1, "top level", "a mapping of group names, e.g. 'all:' with hosts and children"
            )
        for name, body in data.items():
            self._group(name, body, None, shown_key(name), data.line_of(name))
        return self.inventory

    def _group(self, name: object, body: object, parent: str | None, where: str, line: int) -> None:
        if not isinstance(name, str) or not name:
            raise self.inventory.error(line, where, f"{name!r} is not allowed as a group name")
        self.inventory.group(name)
        if parent is not None:
            self.inventory.add_child(parent, name, line, where)
        if body is None:
            return
        if not isinstance(body, _Map):
            raise self.inventory.error(
                line, where, "a group is a mapping with hosts, children or vars (or nothing)"
            )
        for key in body:
            if key not in _GROUP_KEYS:
                raise self.inventory.error(
                    body.line_of(key), f"{where}.{shown_key(key)}",
                    f"unknown key; allowed: {', '.join(_GROUP_KEYS)}",
                )
        self._vars(name, body, where)
        self._hosts(name, body, where)
        children = self._mapping(body, "children", where)
        for child, child_body in children.items():
            self._group(child, child_body, name, f"{where}.children.{shown_key(child)}",
                        children.line_of(child))

    def _mapping(self, body: _Map, key: str, where: str) -> _Map:
        value = body.get(key)
        if value is None:
            return _Map()
        if not isinstance(value, _Map):
            raise self.inventory.error(
                body.line_of(key), f"{where}.{key}",
                f"{_kind(value)} is not allowed; {key} is a mapping of names (or nothing)",
            )
        return value

    def _vars(self, group: str, body: _Map, where: str) -> None:
        variables = self._mapping(body, "vars", where)
        target = self.inventory.group(group).vars
        for key, value in variables.items():
            target[str(key)] = Var(value, variables.line_of(key),
                                   f"{where}.vars.{shown_key(key)}")

    def _hosts(self, group: str, body: _Map, where: str) -> None:
        hosts = self._mapping(body, "hosts", where)
        for pattern, host_vars in hosts.items():
            line = hosts.line_of(pattern)
            field = f"{where}.hosts.{shown_key(pattern)}"
            if isinstance(pattern, bool) or not isinstance(pattern, str | int | float):
                raise self.inventory.error(line, field, "not allowed as a host name")
            try:
                names, port = host_names(str(pattern))
            except ValueError as exc:
                raise self.inventory.error(line, field, str(exc)) from None
            variables: dict[str, Var] = {}
            if port is not None:
                variables["ansible_port"] = Var(port, line, field)
            if host_vars is not None and not isinstance(host_vars, Mapping):
                raise self.inventory.error(
                    line, field,
                    f"{_kind(host_vars)} is not allowed; a host maps to its variables "
                    "(or nothing)",
                )
            for key, value in (host_vars or {}).items():
                at = host_vars.line_of(key) if isinstance(host_vars, _Map) else line
                variables[str(key)] = Var(value, at, f"{field}.{shown_key(key)}")
            for name in names:
                self.inventory.add_host(group, name, variables)


def _kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    return repr(value)


def parse_ansible_yaml(text: str, path: Path) -> AnsibleInventory:
    """Reads a YAML inventory's text (``path`` names it in errors).

    Raises:
        InventoryError: not YAML, or not shaped as Ansible reads it; the error names the line.
    """
    return _YamlReader(path).read(_load(text, path))
