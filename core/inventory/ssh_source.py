"""What every SSH inventory shares: the machines it makes, its errors, its fleet source.

The SSH inventories (``ssh_config``, ``toml_inventory``, ``ansible``) only read files; the
one SSH backend of a fleet, shared by all its SSH sources, is made here
(:func:`open_ssh_backend`, called by ``open_fleet``).

Groups become tags: each group a host belongs to is a tag whose name is the group and whose
value is empty, so ``--target tag:web`` selects the members of ``web`` and
``tag:web,db`` the members of either. A tag written out for the host with the same name
keeps its value (the tag still exists, so the group query still matches).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path

from core.azure.blob import AppendBlobClient
from core.azure.http import pooled_client
from core.azure.session import OutputContainer
from core.backends.base import Backend
from core.inventory.sources import FleetError, FleetOptions, FleetSource
from core.model import Machine, MachineKind, OsType, SshEndpoint
from core.trusted_files import UntrustedFileError, check_trusted
from core.user_paths import UnknownUserError, expand_user

MAX_PORT = 65535
PORT_ALLOWED = f"use 1 to {MAX_PORT}"


def ssh_fleet_source(
    spec: str, machines_loader: Callable[[], list[Machine]], *, ssh_config: Path | None = None
) -> FleetSource:
    """The fleet source of an SSH inventory.

    Args:
        spec: The ``--fleet`` value, for messages.
        machines_loader: Reads the inventory (blocking file I/O: it runs in a thread).
            Raises :class:`FleetError` for bad input.
        ssh_config: An ssh config the backend must read to reach these hosts.
    """

    async def load() -> list[Machine]:
        return await asyncio.to_thread(machines_loader)

    return FleetSource(spec, load, ssh_hosts=True,
                       ssh_config=str(ssh_config) if ssh_config else "")


def open_ssh_backend(
    options: FleetOptions, configs: Sequence[Path]
) -> tuple[Backend, Callable[[], Awaitable[None]]]:
    """The one SSH backend of a fleet, and what closes it.

    It reads the given ssh configs (the default one when there are none), enforces
    known_hosts as the options say, and copies each run's output to the append blobs of
    ``[azure] output_container`` when that is a SAS URL (the same blobs as the Azure path).
    """
    # Imported here: the backend reads ssh configs with this package's reader.
    from core.backends.ssh import SshBackend, SshSettings

    settings = SshSettings(accept_new_host_keys=options.accept_new_host_keys,
                           config=tuple(configs) or None)
    container = _output_container()
    if not container:
        backend = SshBackend(settings)
        return backend, backend.aclose
    http = pooled_client()
    backend = SshBackend(settings, blobs=AppendBlobClient(http),
                         output=OutputContainer(container))

    async def close() -> None:
        await backend.aclose()
        await http.aclose()

    return backend, close


def _output_container() -> str:
    """``[azure] output_container`` when it is a SAS URL; '' otherwise (or unreadable)."""
    from core.azure.settings import SettingsError, load_azure_settings

    try:
        settings = load_azure_settings()
    except SettingsError:
        return ""  # --fleet azure reports the error; SSH runs need no blobs
    return "" if settings.output_identity else settings.output_container


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


def inventory_error(path: Path | str, line: int | None, field: str, message: str) -> FleetError:
    """An error about one field of an inventory file, shown to the user as is."""
    return FleetError(f"{where(path, line, field)}: {message}")


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
        FleetError: ``~user`` names no user; the error names the file, line and field.
    """
    try:
        return expand_user(text)
    except UnknownUserError as exc:
        raise inventory_error(path, line, field, str(exc)) from None


def no_hosts_error(path: Path | str, what: str) -> FleetError:
    """The error for an inventory that lists no host at all (almost surely a mistake)."""
    return FleetError(f"{path}: no hosts: {what}")


def read_text(path: Path) -> str:
    """An inventory file's text, or a :class:`FleetError` saying why it cannot be read.

    It must be the user's own and writable by no one else: it says where fleetrun logs in
    and with which key, as ``~/.ssh/config`` does for ssh (:mod:`core.trusted_files`).
    """
    try:
        check_trusted(path)
        return path.read_text(encoding="utf-8")
    except UntrustedFileError as exc:
        raise FleetError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise FleetError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except ValueError:  # a NUL in the name: no file can have it
        raise FleetError(f"{path!r}: not a valid file name") from None
    except FileNotFoundError:
        raise FleetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FleetError(f"{path}: is a directory, not an inventory file") from None
    except OSError as exc:
        raise FleetError(f"{path}: cannot read: {exc.strerror}") from None
