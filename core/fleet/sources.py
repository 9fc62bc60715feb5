"""``--fleet`` values: the table of named sources, and which source a value names.

``local`` (this machine), ``azure`` (the VMs and Arc servers of the configured
subscriptions), ``sandbox`` (the built-in emulated Azure fleet, or ``sandbox:FILE`` for a
fleet file, reached through the same Azure clients), ``ssh-config`` (the hosts of
``~/.ssh/config``, or ``ssh-config:PATH``), ``ssh:HOSTS`` (SSH hosts from a node set
such as ``web[01-20].prod,db-[1-3]:2222``, :mod:`core.fleet.ad_hoc`) and any other value
that is a file path: an SSH inventory (fleetrun TOML, Ansible INI or YAML, or an ssh
config), its format picked by :mod:`core.inventory.inventory_files`.

Each kind loads only when named: the sandbox's server, Azure's clients and asyncssh cost
start-up time a fleet without them should not pay.
"""

from __future__ import annotations

from collections.abc import Callable

from core.fleet.options import FleetOptions
from core.fleet.source import FleetError, FleetSource


def _local(spec: str, _options: FleetOptions) -> FleetSource:
    from core.fleet.local import local_source

    return local_source(spec)


def _azure(spec: str, _options: FleetOptions) -> FleetSource:
    from core.fleet.azure import azure_source

    return azure_source(spec)


def _sandbox(spec: str, _options: FleetOptions) -> FleetSource:
    from core.fleet.sandbox import sandbox_source

    return sandbox_source(spec)


def _ssh_config(spec: str, _options: FleetOptions) -> FleetSource:
    from core.fleet.ssh import ssh_config_source

    return ssh_config_source(spec)


def _ad_hoc(spec: str, options: FleetOptions) -> FleetSource:
    from core.fleet.ad_hoc import ad_hoc_source

    return ad_hoc_source(spec, options)


SOURCES: dict[str, Callable[[str, FleetOptions], FleetSource]] = {
    "local": _local,
    "azure": _azure,
    "sandbox": _sandbox,
    "ssh-config": _ssh_config,
    "ssh": _ad_hoc,
}
"""Every named source; ``NAME:ARGUMENT`` passes the whole value (and the fleet's options)
to NAME's factory."""


def resolve_fleet(spec: str, options: FleetOptions | None = None) -> FleetSource:
    """The source a ``--fleet`` value names: a source's name first, else a file path."""
    from core.inventory.inventory_files import looks_like_path

    name = spec.split(":", 1)[0].strip().lower()
    factory = SOURCES.get(name)
    if factory is not None:
        return factory(spec, options or FleetOptions())
    if looks_like_path(spec):
        from core.fleet.files import file_source

        return file_source(spec)
    allowed = ", ".join(sorted(SOURCES))
    raise FleetError(
        f"fleet: unknown source {spec!r}; allowed: {allowed}, sandbox:FILE, "
        "ssh-config:FILE, ssh:HOSTS, or an inventory file (.toml, Ansible .ini/.yml, an ssh config)"
    )
