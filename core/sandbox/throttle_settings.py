"""A fleet file's ``[throttle]`` table and its ``[[principals]]``: who is throttled, and how much.

ARM's 2024 token-bucket model (reference ``azure-run-command.md`` 7.2): buckets per
(subscription, principal, region of the ARM instance), reads, writes and deletes apart, and a
subscription-global bucket at 15x that every principal of the subscription draws on.
Compute's resource provider (7.3) counts some operations again, per operation group over a
3-minute and a 30-minute window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.sandbox import fleet_fields as read
from core.sandbox.access import DEFAULT_PRINCIPAL, MIN_TOKEN_LENGTH, is_bearer_token
from core.sandbox.fleet_fields import FleetFileError
from core.sandbox.rbac import Assignment, Role, parse_assignments

GLOBAL_FACTOR = 15
"""ARM's subscription-global bucket is 15x the regional one (7.2: 3749 next to 249)."""
DEFAULT_REGION = "westeurope"

COMPUTE_OPERATIONS = {
    "vm_get": "GET virtualMachines/{vm} without $expand=instanceView",
    "vm_instance_view": "GET virtualMachines/{vm}?$expand=instanceView and .../instanceView",
    "run_command_get": "GET .../runCommands/{name} without $expand=instanceView",
    "run_command_instance_view": "GET .../runCommands/{name}?$expand=instanceView",
    "run_command_list": "GET .../runCommands",
    "operation_status": "GET .../locations/{location}/operations/{id} (LRO status)",
}
"""The Compute GETs an operation group may count, by the name a fleet file gives them."""

WINDOWS = (("3Min", 180.0), ("30Min", 1800.0))
"""CRP's two windows per group; the suffix is the policy name's (HighCostGet3Min)."""

HIGH_COST_GET = "HighCostGet"
HIGH_COST_GET_PER_30MIN = 300
"""The reference's only documented count: ``allowedRequestCount: 300`` for HighCostGet30Min."""
HIGH_COST_GET_PER_3MIN = 160
"""Undocumented; the smallest count consistent with the reference's example header
``Microsoft.Compute/HighCostGet3Min;159`` (159 left after one request in a fresh window)."""

_REGION = re.compile(r"^[a-z][a-z0-9]{1,39}$")
_GROUP = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,59}$")
_PRINCIPAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Bucket:
    capacity: int
    refill_per_second: float


@dataclass(frozen=True, slots=True)
class ComputeGroup:
    """One CRP operation group: which operations it counts and how many per window."""

    name: str
    operations: frozenset[str]
    per_3min: int
    per_30min: int

    def allowed(self, suffix: str) -> int:
        return self.per_3min if suffix == "3Min" else self.per_30min


@dataclass(frozen=True, slots=True)
class ComputeLimits:
    """Compute's own limits. Instance-view GETs of VMs are HighCostGet (7.3); which group a
    run-command GET falls in is undocumented, so by default it is in none."""

    enabled: bool = True
    groups: tuple[ComputeGroup, ...] = (
        ComputeGroup(HIGH_COST_GET, frozenset({"vm_instance_view"}),
                     HIGH_COST_GET_PER_3MIN, HIGH_COST_GET_PER_30MIN),
    )

    def groups_for(self, operation: str) -> tuple[ComputeGroup, ...]:
        if not self.enabled:
            return ()
        return tuple(g for g in self.groups if operation in g.operations)


@dataclass(frozen=True, slots=True)
class Throttle:
    """ARM's token buckets, Compute's operation groups and Resource Graph's per-user quota."""

    reads: Bucket = Bucket(250, 25.0)
    writes: Bucket = Bucket(200, 10.0)
    deletes: Bucket = Bucket(200, 10.0)
    region: str = DEFAULT_REGION
    """The region of the ARM instance the sandbox plays: part of every bucket's scope."""
    global_factor: int = GLOBAL_FACTOR
    graph_queries: int = 15
    graph_window: float = 5.0
    compute: ComputeLimits = ComputeLimits()


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller besides the sandbox's own: its own token, so its own ARM buckets."""

    name: str
    token: str = field(repr=False)
    roles: tuple[Assignment, ...] | None = None
    """Its role assignments; None (no ``roles`` in the fleet file): Owner at ``/``."""


def parse_throttle(raw: Mapping[str, Any]) -> Throttle:
    read.only(raw, "throttle.", {"reads", "writes", "deletes", "region", "global_factor",
                                 "graph_queries", "graph_window", "compute"})
    default = Throttle()

    def bucket(name: str, fallback: Bucket) -> Bucket:
        table = read.table(raw, name, "throttle.")
        where = f"throttle.{name}."
        read.only(table, where, {"capacity", "refill_per_second"})
        capacity = read.integer(table, "capacity", where, fallback.capacity, 1, 10**9)
        refill = table.get("refill_per_second", fallback.refill_per_second)
        if not isinstance(refill, int | float) or isinstance(refill, bool) or refill <= 0:
            raise FleetFileError(f"{where}refill_per_second: a number above 0")
        return Bucket(capacity, float(refill))

    region = read.text(raw, "region", "throttle.", DEFAULT_REGION).replace(" ", "").lower()
    if not _REGION.match(region):
        raise FleetFileError(f"throttle.region: {region!r} is not allowed; an Azure region "
                             "name such as 'westeurope' or 'eastus2' (letters and digits)")
    return Throttle(
        reads=bucket("reads", default.reads),
        writes=bucket("writes", default.writes),
        deletes=bucket("deletes", default.deletes),
        region=region,
        global_factor=read.integer(raw, "global_factor", "throttle.", GLOBAL_FACTOR, 1, 1000),
        graph_queries=read.integer(raw, "graph_queries", "throttle.", default.graph_queries,
                                   1, 10**9),
        graph_window=read.duration(raw, "graph_window", "throttle.", default.graph_window,
                                   minimum=0.1),
        compute=_compute(read.table(raw, "compute", "throttle.")),
    )


def _compute(raw: Mapping[str, Any]) -> ComputeLimits:
    where = "throttle.compute."
    read.only(raw, where, {"enabled", "groups"})
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise FleetFileError(f"{where}enabled: true or false")
    if "groups" not in raw:
        return ComputeLimits(enabled=enabled)
    groups = read.table(raw, "groups", where)
    return ComputeLimits(enabled=enabled, groups=tuple(
        _group(name, read.table(groups, name, where + "groups."), f"{where}groups.{name}.")
        for name in groups
    ))


def _group(name: str, raw: Mapping[str, Any], where: str) -> ComputeGroup:
    if not _GROUP.match(name):
        raise FleetFileError(f"{where[:-1]}: {name!r} is not allowed as a group name; letters "
                             "and digits, starting with a letter (e.g. HighCostGet)")
    read.only(raw, where, {"operations", "per_3min", "per_30min"})
    operations = raw.get("operations")
    allowed = ", ".join(COMPUTE_OPERATIONS)
    if (not isinstance(operations, list) or not operations
            or not all(isinstance(o, str) for o in operations)):
        raise FleetFileError(f"{where}operations: a list of one or more of: {allowed}")
    for operation in operations:
        if operation not in COMPUTE_OPERATIONS:
            raise FleetFileError(f"{where}operations: {operation!r} is not allowed; "
                                 f"allowed: {allowed}")
    # Only HighCostGet has documented counts; any other group must say its own.
    documented = name == HIGH_COST_GET
    counts = []
    for key, fallback in (("per_3min", HIGH_COST_GET_PER_3MIN),
                          ("per_30min", HIGH_COST_GET_PER_30MIN)):
        if key not in raw and not documented:
            raise FleetFileError(f"{where}{key}: required (requests allowed per window, "
                                 "from 1 to 1000000)")
        counts.append(read.integer(raw, key, where, fallback, 1, 1_000_000))
    return ComputeGroup(name, frozenset(operations), counts[0], counts[1])


def parse_principals(raw: object, roles: Mapping[str, Role] | None = None
                     ) -> tuple[Principal, ...]:
    """``[[principals]]``: more callers, each a name and a bearer token of its own, and
    the roles it holds (``roles``: custom roles by lowercase name besides the built-in)."""
    if not isinstance(raw, list):
        raise FleetFileError("principals: a list of [[principals]] tables with name and token")
    principals: list[Principal] = []
    names: dict[str, int] = {DEFAULT_PRINCIPAL.lower(): -1}
    tokens: dict[str, int] = {}
    for index, entry in enumerate(raw):
        where = f"principals[{index}]."
        if not isinstance(entry, dict):
            raise FleetFileError(f"principals[{index}]: must be a table with name and token")
        read.only(entry, where, {"name", "token", "roles"})
        name = read.text(entry, "name", where, None)
        if not _PRINCIPAL.match(name):
            raise FleetFileError(f"{where}name: {name!r} is not allowed; 1-64 letters, digits "
                                 "and - _ . @, starting with a letter or digit")
        if name.lower() in names:
            taken = names[name.lower()]
            owner = ("the sandbox's own principal (its serve token)" if taken < 0
                     else f"principals[{taken}]")
            raise FleetFileError(f"{where}name: {name!r} is already used by {owner}; "
                                 "names must be unique (case-insensitive)")
        names[name.lower()] = index
        token = entry.get("token")
        # Never echo a token: the message names the field and what a token may hold.
        if not isinstance(token, str) or not is_bearer_token(token):
            raise FleetFileError(f"{where}token: not a usable token; allowed: at least "
                                 f"{MIN_TOKEN_LENGTH} characters of letters, digits and "
                                 "- . _ ~ + / (with = only at the end)")
        if token in tokens:
            raise FleetFileError(f"{where}token: the same token as principals[{tokens[token]}]; "
                                 "each principal needs its own")
        tokens[token] = index
        held = (parse_assignments(entry["roles"], where, roles or {}) if "roles" in entry
                else None)
        principals.append(Principal(name, token, held))
    return tuple(principals)
