"""SSH fleets: inventories of SSH hosts, and the one SSH backend they share.

Every SSH source (an inventory file, ``ssh-config[:PATH]``) lists hosts; the fleet opens one
SSH backend for all of them (:func:`open_ssh_backend`), which reads the ssh configs the
sources name as well as the default one.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import config_dir
from core.config_file import CONFIG_FILE, ConfigFileError, read_config
from core.fleet.opened_backend import OpenedBackend, SourceReach
from core.fleet.options import FleetOptions
from core.fleet.source import FleetError, FleetSource
from core.model import Machine, MachineKind
from core.user_paths import UnknownUserError, expand_user

DEFAULT_CONFIG = "~/.ssh/config"
OUTPUT_CONTAINER_ENV = "FLEETRUN_AZURE_OUTPUT_CONTAINER"
"""core.azure.settings's, named here so that an SSH fleet checks it without loading Azure."""


@dataclass(frozen=True, slots=True)
class SshReach:
    """What an SSH source's hosts need: an ssh config to read besides the default, if any."""

    config: Path | None = None


def ssh_fleet_source(
    spec: str, machines_loader: Callable[[], list[Machine]], *, ssh_config: Path | None = None
) -> FleetSource:
    """The fleet source of an SSH inventory.

    Args:
        spec: The ``--fleet`` value, for messages.
        machines_loader: Reads the inventory (blocking file I/O: it runs in a thread).
            Raises :class:`core.inventory.errors.InventoryError` for bad input.
        ssh_config: An ssh config the backend must read to reach these hosts.
    """

    async def load() -> list[Machine]:
        return await asyncio.to_thread(machines_loader)

    return FleetSource(spec, load, reach={MachineKind.SSH: SshReach(ssh_config)})


def ssh_config_source(spec: str) -> FleetSource:
    """``ssh-config`` (``~/.ssh/config``) or ``ssh-config:PATH``."""
    from core.inventory.ssh_config import load_ssh_config

    _, _, raw = spec.partition(":")
    try:
        path = expand_user(raw.strip() or DEFAULT_CONFIG)
    except UnknownUserError as exc:
        raise FleetError(f"fleet {spec!r}: {exc}") from None

    def load() -> list[Machine]:
        if not path.exists():
            hint = "" if raw.strip() else "; name another file with --fleet ssh-config:PATH"
            raise FleetError(f"fleet {spec!r}: {path}: no such file{hint}")
        return load_ssh_config(path)

    return ssh_fleet_source(spec, load, ssh_config=path if raw.strip() else None)


def open_ssh_backend(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    """The one SSH backend of a fleet.

    It reads the ssh configs the sources name (the default one when there are none),
    enforces known_hosts as the options say, and copies each run's output to the append
    blobs of ``[azure] output_container`` when that is a SAS URL (the same blobs as the
    Azure path).
    """
    from core.backends.ssh import SshBackend, SshSettings

    configs = tuple(r.reach.config for r in reaches
                    if isinstance(r.reach, SshReach) and r.reach.config is not None)
    settings = SshSettings(accept_new_host_keys=options.accept_new_host_keys,
                           config=configs or None, become_method=options.become_method,
                           connect_timeout=options.connect_timeout)
    container = _output_container()
    if not container:
        backend = SshBackend(settings)
        return OpenedBackend(backend, backend.aclose)
    # Only now: the blob client's HTTP stack (httpx) is for a fleet that copies output.
    from core.azure.blob import AppendBlobClient
    from core.azure.http import pooled_client
    from core.azure.session import OutputContainer

    http = pooled_client()
    backend = SshBackend(settings, blobs=AppendBlobClient(http),
                         output=OutputContainer(container))

    async def close() -> None:
        await backend.aclose()
        await http.aclose()

    return OpenedBackend(backend, close)


def _output_container() -> str:
    """``[azure] output_container`` when it is a SAS URL; '' otherwise (or unreadable)."""
    if not _azure_output_may_be_set():
        return ""
    from core.azure.settings import SettingsError, load_azure_settings

    try:
        settings = load_azure_settings()
    except SettingsError:
        return ""  # --fleet azure reports the error; SSH runs need no blobs
    sas = not settings.output_identity and not settings.delegates
    return settings.output_container if sas else ""


def _azure_output_may_be_set() -> bool:
    """Whether config.toml has an ``[azure]`` table or the environment names a container:
    without either the Azure settings (and their modules) need not load for SSH hosts."""
    if os.environ.get(OUTPUT_CONTAINER_ENV):
        return True
    try:
        return "azure" in read_config(config_dir() / CONFIG_FILE)
    except ConfigFileError:
        return False  # as load_azure_settings's SettingsError: no output container
