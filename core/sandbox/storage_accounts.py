"""A fleet file's ``[[storage_accounts]]``: where each storage account lives in ARM, and
which data role the simulated machines' managed identities hold on its containers.

    [[storage_accounts]]
    name = "fleetrunout"                 # 3-24 lowercase letters and digits
    subscription = "..."                 # default: the first machine's
    resource_group = "rg-storage"        # default: the first machine's
    location = "westeurope"              # default: the first machine's
    containers = ["fleetrun"]            # created at start; more through ARM's container PUT
    # key = "..."                        # base64; default random per sandbox
    machine_identity_roles = { "*" = "Storage Blob Data Contributor", scripts = "none" }

The ``[storage]`` account (the sandbox's own) is always one of them: listed here, it takes
its place from this entry (its key and containers stay under ``[storage]``); not listed, it
sits in the first machine's subscription and resource group.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from core.sandbox import fleet_fields as read
from core.sandbox.access import new_account_key
from core.sandbox.fleet_fields import FleetFileError

CONTRIBUTOR: Final = "Storage Blob Data Contributor"
READER: Final = "Storage Blob Data Reader"
NO_ROLE: Final = "none"
IDENTITY_ROLES: Final = (CONTRIBUTOR, READER, NO_ROLE)
ANY_CONTAINER: Final = "*"

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_KEYS = {"name", "subscription", "resource_group", "location", "key", "containers",
         "machine_identity_roles"}


@dataclass(frozen=True, slots=True)
class StorageAccountSpec:
    """One storage account: its ARM home, its key and the machines' identity roles."""

    name: str
    subscription: str
    resource_group: str
    location: str
    key: str = field(default_factory=new_account_key, repr=False)
    containers: tuple[str, ...] = ()
    machine_identity_roles: Mapping[str, str] = field(
        default_factory=lambda: {ANY_CONTAINER: CONTRIBUTOR})
    """Container (or ``*`` for the rest) → the data role every machine's identity holds."""

    def identity_role(self, container: str) -> str:
        """The role the machines' managed identities hold on ``container``."""
        roles = self.machine_identity_roles
        return roles.get(container, roles.get(ANY_CONTAINER, NO_ROLE))


def parse_storage_accounts(
    raw: Any, *, where_first: tuple[str, str, str], own_account: str
) -> tuple[StorageAccountSpec, ...]:
    """The ``[[storage_accounts]]`` entries, checked.

    Args:
        raw: The parsed TOML value (a list of tables, or absent: ``[]``).
        where_first: (subscription, resource group, location) of the first machine: the
            defaults.
        own_account: ``[storage].account``, whose key and containers are set there.

    Raises:
        FleetFileError: Naming the entry and field.
    """
    if not isinstance(raw, list):
        raise FleetFileError("storage_accounts: a list of [[storage_accounts]] tables")
    specs: list[StorageAccountSpec] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        where = f"storage_accounts[{index}]."
        if not isinstance(entry, dict):
            raise FleetFileError(f"storage_accounts[{index}]: must be a table")
        read.only(entry, where, _KEYS)
        name = read.text(entry, "name", where, None)
        if not _ACCOUNT.match(name) or name in ("subscriptions", "providers"):
            raise FleetFileError(f"{where}name: {name!r} is not allowed; 3-24 lowercase "
                                 "letters and digits, not 'subscriptions' or 'providers'")
        if name in seen:
            raise FleetFileError(f"{where}name: {name!r} is already storage_accounts"
                                 f"[{seen[name]}]; account names are unique across Azure")
        seen[name] = index
        if name == own_account and ("key" in entry or "containers" in entry):
            raise FleetFileError(f"{where}: {name!r} is the [storage] account; set its key "
                                 "and containers under [storage]")
        containers = _containers(entry, where)
        key = read.text(entry, "key", where, None) if "key" in entry else new_account_key()
        specs.append(StorageAccountSpec(
            name=name,
            subscription=read.text(entry, "subscription", where, where_first[0]),
            resource_group=read.text(entry, "resource_group", where, where_first[1]),
            location=read.text(entry, "location", where, where_first[2]),
            key=key,
            containers=containers,
            machine_identity_roles=_roles(entry, where),
        ))
    return tuple(specs)


def _containers(entry: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = entry.get("containers", [])
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise FleetFileError(f"{where}containers: a list of container names")
    for name in value:
        if not _CONTAINER.match(name):
            raise FleetFileError(f"{where}containers: {name!r} is not a valid container name "
                                 "(3-63 lowercase letters, digits and single hyphens)")
    return tuple(value)


def _roles(entry: Mapping[str, Any], where: str) -> Mapping[str, str]:
    value = read.table(entry, "machine_identity_roles", where)
    roles = {ANY_CONTAINER: CONTRIBUTOR}
    for container, role in value.items():
        if container != ANY_CONTAINER and not _CONTAINER.match(container):
            raise FleetFileError(f"{where}machine_identity_roles: {container!r} is not a "
                                 "container name or '*'")
        if role not in IDENTITY_ROLES:
            raise FleetFileError(f"{where}machine_identity_roles.{container}: {role!r} is not "
                                 f"allowed; allowed: {', '.join(IDENTITY_ROLES)}")
        roles[container] = role
    return roles


def with_own_account(
    specs: Sequence[StorageAccountSpec], *, name: str, key: str, containers: Sequence[str],
    where_first: tuple[str, str, str],
) -> tuple[StorageAccountSpec, ...]:
    """``specs`` with the ``[storage]`` account's key and containers, added where absent."""
    out: list[StorageAccountSpec] = []
    found = False
    for spec in specs:
        if spec.name == name:
            found = True
            spec = StorageAccountSpec(spec.name, spec.subscription, spec.resource_group,
                                      spec.location, key, tuple(containers),
                                      spec.machine_identity_roles)
        out.append(spec)
    if not found:
        out.insert(0, StorageAccountSpec(name, *where_first, key=key,
                                         containers=tuple(containers)))
    return tuple(out)
