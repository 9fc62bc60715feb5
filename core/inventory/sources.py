"""``--fleet`` values: parse one, load its machines and the backends they need.

Each source names where machines come from: ``local`` (this machine), ``azure`` (the VMs and
Arc servers of the configured subscriptions), ``sandbox`` (the built-in emulated Azure
fleet, or ``sandbox:FILE`` for a fleet file, reached through the same Azure clients),
``ssh-config`` (the hosts of ``~/.ssh/config``, or ``ssh-config:PATH``) and any other value
that is a file path: an SSH inventory (fleetrun TOML, Ansible INI or YAML, or an ssh
config), its format picked by ``core.inventory.inventory_files``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.backends.base import Backend
from core.backends.local import local_machine
from core.errors import BadInputError
from core.model import Machine, MachineKind

DEFAULT_FLEET = "sandbox"
"""What fleetrun opens on when nothing is configured."""


class FleetError(BadInputError, ValueError):
    """A --fleet value that names no known source, or a source that failed to load."""


async def _nothing_to_close() -> None:
    return None


async def _no_machines() -> list[Machine]:
    return []


@dataclass(frozen=True, slots=True)
class FleetSource:
    spec: str
    load: Callable[[], Awaitable[list[Machine]]] = _no_machines
    backends: dict[MachineKind, Backend] = field(default_factory=dict)
    """Backends this source's machines need beyond the built-in ones."""
    aclose: Callable[[], Awaitable[None]] = _nothing_to_close
    """Releases what the source started (inside the event loop that used it)."""
    ssh_hosts: bool = False
    """Its machines are SSH hosts: the fleet brings one SSH backend for all such sources."""
    ssh_config: str = ""
    """An ssh config the SSH backend must read too (``ssh-config:PATH``)."""


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """Choices the user makes for a whole fleet, whatever its sources.

    Attributes:
        accept_new_host_keys: Trust (and record in known_hosts) SSH host keys not seen
            before; changed keys are refused regardless.
    """

    accept_new_host_keys: bool = False


@dataclass(slots=True)
class Fleet:
    """The machines of some ``--fleet`` values, and what it takes to reach them."""

    machines: list[Machine]
    backends: dict[MachineKind, Backend]
    sources: list[FleetSource]
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    """What the fleet itself opened (the SSH backend's connections)."""

    async def aclose(self) -> None:
        for source in self.sources:
            await source.aclose()
        for close in self.closers:
            await close()


def _sandbox(spec: str) -> FleetSource:
    from core.inventory.sandbox import sandbox_source  # the sandbox loads only when named

    return sandbox_source(spec)


def _azure(spec: str) -> FleetSource:
    from core.inventory.azure import azure_source

    return azure_source(spec)


def _local(spec: str) -> FleetSource:
    async def load() -> list[Machine]:
        return [local_machine()]

    return FleetSource(spec, load)


def _ssh_config(spec: str) -> FleetSource:
    from core.inventory.ssh_config import ssh_config_source

    return ssh_config_source(spec)


_SOURCES: dict[str, Callable[[str], FleetSource]] = {
    "local": _local,
    "azure": _azure,
    "sandbox": _sandbox,
    "ssh-config": _ssh_config,
}


def resolve_fleet(spec: str) -> FleetSource:
    """The source a ``--fleet`` value names: a source's name first, else a file path."""
    from core.inventory.inventory_files import file_source, looks_like_path

    name = spec.split(":", 1)[0].strip().lower()
    factory = _SOURCES.get(name)
    if factory is not None:
        return factory(spec)
    if looks_like_path(spec):
        return file_source(spec)
    allowed = ", ".join(sorted(_SOURCES))
    raise FleetError(
        f"fleet: unknown source {spec!r}; allowed: {allowed}, sandbox:FILE, "
        "ssh-config:FILE, or an inventory file (.toml, Ansible .ini/.yml, an ssh config)"
    )


async def open_fleet(specs: Sequence[str], options: FleetOptions | None = None) -> Fleet:
    """Machines of every source, in order (a machine listed twice is kept once).

    The fleet must be closed (``aclose``) in the same event loop, even when this fails.
    """
    sources: list[FleetSource] = []
    closers: list[Callable[[], Awaitable[None]]] = []
    try:
        for spec in specs:
            sources.append(resolve_fleet(spec))
        seen: dict[str, Machine] = {}
        backends: dict[MachineKind, Backend] = {}
        if any(source.ssh_hosts for source in sources):
            from core.inventory.ssh_source import open_ssh_backend

            configs = [Path(s.ssh_config) for s in sources if s.ssh_config]
            backends[MachineKind.SSH], close = open_ssh_backend(options or FleetOptions(),
                                                                configs)
            closers.append(close)
        for source in sources:
            for kind, backend in source.backends.items():
                if backends.setdefault(kind, backend) is not backend:
                    raise FleetError(
                        f"fleet: {source.spec!r} and another source both bring {kind.value} "
                        "machines; use one of them per run"
                    )
            for machine in await source.load():
                seen.setdefault(machine.id, machine)
    except BaseException:
        await Fleet([], {}, sources, closers).aclose()
        raise
    return Fleet(list(seen.values()), backends, sources, closers)
