"""Inventory files: the format of one, told by its name and, failing that, its text.

- ``.toml``: fleetrun's TOML inventory (a sandbox fleet file is pointed to ``sandbox:FILE``).
- ``.yml`` / ``.yaml``: an Ansible YAML inventory.
- ``.ini``: an Ansible INI inventory.
- anything else (``hosts``, ``config``, ``.cfg``, ``.conf``...) by its first lines: a
  ``[section]`` first is Ansible INI, ``---`` or ``name:`` alone is Ansible YAML, a
  ``Host``/``Match``/``Include`` line is an ssh config, a TOML file with ``[[hosts]]`` is
  fleetrun's, and the rest is read as Ansible INI (Ansible's own default).

A ``--fleet`` value is a path when it has a ``/``, starts with ``~``, ends with one of those
extensions or names an existing file; the named sources (``local``, ``sandbox``...) come
first (:mod:`core.fleet.sources`).
"""

from __future__ import annotations

import re
import tomllib
from enum import Enum
from pathlib import Path

from core.inventory.ssh_hosts import read_text
from core.model import Machine
from core.toml_text import parse_toml

INVENTORY_SUFFIXES = frozenset({".toml", ".ini", ".yml", ".yaml", ".cfg", ".conf"})

_SSH_LINE = re.compile(r"^(host|match|include)(\s*=\s*|\s+)\S", re.IGNORECASE)
_YAML_START = re.compile(r"^(---|[^\s:#\[][^:]*:\s*(#.*)?)$")


class InventoryFormat(Enum):
    """The formats ``--fleet PATH`` reads."""

    TOML = "fleetrun TOML inventory"
    ANSIBLE_INI = "Ansible INI inventory"
    ANSIBLE_YAML = "Ansible YAML inventory"
    SSH_CONFIG = "ssh config"


def looks_like_path(spec: str) -> bool:
    """Whether a ``--fleet`` value that names no source is meant as a file."""
    text = spec.strip()
    if not text:
        return False
    if "/" in text or "\\" in text or text.startswith("~"):
        return True
    return Path(text).suffix.lower() in INVENTORY_SUFFIXES or Path(text).is_file()


def sniff_format(text: str) -> InventoryFormat:
    """The format of an inventory whose name does not tell it, from its text."""
    significant = [
        line.strip() for line in text.splitlines()
        if line.strip() and not line.strip().startswith(("#", ";"))
    ]
    if not significant:
        return InventoryFormat.ANSIBLE_INI  # empty: the INI reader says there are no hosts
    first = significant[0]
    if first.startswith("["):
        if first.startswith("[[") or _is_fleetrun_toml(text):
            return InventoryFormat.TOML
        return InventoryFormat.ANSIBLE_INI
    if _YAML_START.match(first):
        return InventoryFormat.ANSIBLE_YAML
    if any(_SSH_LINE.match(line) for line in significant):
        return InventoryFormat.SSH_CONFIG
    if _is_fleetrun_toml(text):
        return InventoryFormat.TOML
    return InventoryFormat.ANSIBLE_INI


def _is_fleetrun_toml(text: str) -> bool:
    """TOML with hosts, or a sandbox fleet file (the TOML reader points it elsewhere)."""
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError:
        return False
    return "hosts" in data or "machines" in data


def file_format(path: Path) -> InventoryFormat:
    """The format of an inventory file, from its extension or else its text.

    Raises:
        InventoryError: the file cannot be read.
    """
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return InventoryFormat.TOML
    if suffix in (".yml", ".yaml"):
        return InventoryFormat.ANSIBLE_YAML
    if suffix == ".ini":
        return InventoryFormat.ANSIBLE_INI
    return sniff_format(read_text(path))


def load_inventory_file(path: Path, kind: InventoryFormat) -> list[Machine]:
    """The machines of an inventory file read as ``kind`` (blocking file I/O).

    Raises:
        InventoryError: the file cannot be read or is not a valid inventory of that kind.
    """
    if kind is InventoryFormat.SSH_CONFIG:
        from core.inventory.ssh_config import load_ssh_config

        return load_ssh_config(path)
    if kind is InventoryFormat.TOML:
        from core.inventory.toml_inventory import load_toml_inventory

        return load_toml_inventory(path)
    from core.inventory.ansible_file import load_ansible

    return load_ansible(path, yaml=kind is InventoryFormat.ANSIBLE_YAML)
