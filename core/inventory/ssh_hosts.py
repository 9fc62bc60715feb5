"""What every SSH inventory shares: the machines it makes and how it reports bad input.

The SSH inventories (``ssh_config``, ``toml_inventory``, ``ansible``) only read files; the
one SSH backend of a fleet, shared by all its SSH sources, is the fleet's
(:mod:`core.fleet.ssh`).

Groups become tags: each group a host belongs to is a tag whose name is the group and whose
value is empty, so ``--target tag:web`` selects the members of ``web`` and
``tag:web,db`` the members of either. A tag written out for the host with the same name
keeps its value (the tag still exists, so the group query still matches).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from core.inventory.errors import InventoryError
from core.model import Machine, MachineKind, OsType, SshEndpoint
from core.trusted_files import UnreadableFileError, read_trusted_text
from core.user_paths import UnknownUserError, expand_user

MAX_PORT = 65535
PORT_ALLOWED = f"use 1 to {MAX_PORT}"


def ssh_machine(
    name: str,
    *,
    host: str = "",
    port: int | None = None,
    user: str = "",
    identity_file: str = "",
    os_type: OsType = OsType.LINUX,
    tags: Mapping[str, str] | None = None,
    groups: Iterable[str] = (),
    address: str = "",
) -> Machine:
    """One SSH host as fleetrun lists it.

    Args:
        name: The inventory's name for the host; the machine id is ``ssh:NAME``.
        host: What the backend connects to (an ssh config alias or a host name);
            defaults to ``name``.
        port: None leaves it to the ssh config, then 22.
        user: Empty leaves it to the ssh config, then the local user.
        identity_file: Empty leaves it to the ssh config and the agent.
        os_type: Decides which command type the host gets.
        tags: Tags written out for the host.
        groups: Groups the host belongs to; each becomes a tag with an empty value.
        address: Where the host is, for people; defaults to ``host``.
    """
    target = host or name
    return Machine(
        id=f"ssh:{name}",
        name=name,
        kind=MachineKind.SSH,
        os=os_type,
        tags=tags_with_groups(tags or {}, groups),
        address=address or target,
        ssh=SshEndpoint(host=target, port=port, user=user, identity_file=identity_file),
    )


def tags_with_groups(tags: Mapping[str, str], groups: Iterable[str]) -> dict[str, str]:
    """``tags`` plus one empty-valued tag per group (a written tag keeps its value)."""
    merged = {group: "" for group in groups}
    merged.update(tags)
    return merged


def where(path: Path | str, line: int | None, field: str) -> str:
    """The prefix of an inventory error: ``FILE:LINE: FIELD``, without what is missing."""
    place = f"{path}:{line}" if line is not None else str(path)
    return f"{place}: {field}" if field else place


def inventory_error(path: Path | str, line: int | None, field: str, message: str) -> InventoryError:
    """An error about one field of an inventory file, shown to the user as is."""
    return InventoryError(f"{where(path, line, field)}: {message}")


def parse_port(value: object) -> int | None:
    """A port from an inventory value (an integer, or digits), or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 1 <= number <= MAX_PORT else None


def user_path(text: str, path: Path | str, line: int | None, field: str) -> Path:
    """A path written in an inventory, ``~`` and ``~user`` expanded.

    Raises:
        InventoryError: ``~user`` names no user; the error names the file, line and field.
    """
    try:
        return expand_user(text)
    except UnknownUserError as exc:
        raise inventory_error(path, line, field, str(exc)) from None


def no_hosts_error(path: Path | str, what: str) -> InventoryError:
    """The error for an inventory that lists no host at all (almost surely a mistake)."""
    return InventoryError(f"{path}: no hosts: {what}")


def read_text(path: Path) -> str:
    """An inventory file's text, or an :class:`InventoryError` saying why it cannot be read.

    It must be the user's own and writable by no one else: it says where fleetrun logs in
    and with which key, as ``~/.ssh/config`` does for ssh (:mod:`core.trusted_files`).
    """
    try:
        return read_trusted_text(path)
    except UnreadableFileError as exc:
        raise InventoryError(str(exc)) from None
