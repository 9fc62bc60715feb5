"""An Ansible inventory file, INI or YAML, read into SSH machines (see core.inventory.ansible)."""

from __future__ import annotations

from pathlib import Path

from core.inventory.ansible_ini import parse_ansible_ini
from core.inventory.ansible_yaml import parse_ansible_yaml
from core.inventory.ssh_hosts import read_text
from core.model import Machine


def load_ansible(path: Path, *, yaml: bool) -> list[Machine]:
    """The machines of an Ansible inventory file, INI or YAML.

    Raises:
        InventoryError: the file cannot be read or is not a valid inventory.
    """
    text = read_text(path)
    inventory = parse_ansible_yaml(text, path) if yaml else parse_ansible_ini(text, path)
    return inventory.machines()
