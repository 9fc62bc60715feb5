"""The sandbox's fleet file: simulated machines, timings, throttle budgets and faults.

A fleet file is TOML. ``default_fleet.toml`` beside this module is the fleet fleetrun opens
on when nothing is configured, and it documents every key. Loading checks every field and
names the bad one (``machines[3].kind: 'foo' is not allowed; allowed: arc, vm``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from core.field_names import shown_key
from core.sandbox import fleet_fields as read
from core.sandbox.access import new_account_key
from core.sandbox.fleet_fields import FleetFileError as FleetFileError  # its home for callers
from core.sandbox.rbac import parse_custom_roles
from core.sandbox.storage_accounts import StorageAccountSpec, parse_storage_accounts
from core.sandbox.throttle_settings import Principal, Throttle, parse_principals, parse_throttle
from core.toml_text import parse_toml
from core.trusted_files import UntrustedFileError, check_trusted
from core.user_paths import UnknownUserError, expand_user

DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000f1ee"
DEFAULT_SIM_OUTPUT = "simulated output from {machine}\n"

KINDS = ("vm", "arc")
OSES = ("linux", "windows")
EXECUTORS = ("auto", "process", "simulated")
VM_AGENT = ("ready", "not-ready")
VM_POWER = ("running", "stopped", "deallocated")
ARC_STATUS = ("connected", "disconnected", "error", "expired")
CONFIG_MODES = ("full", "monitor")
_EXTENSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
"""An extension as azcmagent's lists name it: ``Publisher/Type``."""
TIMEOUT_STATES = ("Failed", "TimedOut")
ORCHESTRATIONS = ("Uniform", "Flexible")
MAX_SCALE_SET_INSTANCES = 1000
"""A Uniform scale set's limit with a platform image (azure-storage-and-scale-sets.md 6)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,53}$")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
MAX_APPEND_BLOCK_CEILING = 100 * 1024 * 1024
"""Azure's own Append Block limit (x-ms-version 2022-11-02 on): the most a fleet may allow."""
_TEMPLATE_SPEC = re.compile(r"^(0?[0-9]{0,2})[dxX]?$")
_RESERVED_ACCOUNTS = frozenset({"subscriptions", "providers"})
"""The sandbox serves ARM and blobs on one host: these first path segments are ARM's."""


@dataclass(frozen=True, slots=True)
class Storm:
    """A 429 storm: every ``every`` seconds, all ARM calls are throttled for ``lasting``."""

    every: float
    lasting: float


@dataclass(frozen=True, slots=True)
class Faults:
    """Injected misbehaviour, fleet-wide or for one machine.

    Request faults (``latency``, ``error_rate``, ``drop_rate``, ``throttle_storm``) apply to
    ARM requests; the rest change how an agent runs commands.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    throttle_storm: Storm | None = None
    stuck: bool = False
    """The agent starts scripts but never reports them finished."""
    blob_delay: float = 0.0
    """Seconds before the agent creates the output blobs (they appear late)."""
    disconnect_after: float | None = None
    """Seconds into a run after which the machine's agent drops off (Not Ready/Disconnected)."""
    delete_errors: int = 0
    """How many of the machine's first run command DELETEs answer 500 (a passing outage)."""
    managed_forbidden: bool = False
    """The caller may use the action API (``runCommand/action``) but not create managed run
    commands (no ``runCommands/write``): the managed PUT answers 403 AuthorizationFailed."""
    given: frozenset[str] = frozenset()
    """The keys the fleet file set here: a machine's ``error_rate = 0`` must still win."""

    def over(self, fleet_wide: Faults) -> Faults:
        """These faults where set, the fleet-wide ones elsewhere (field by field)."""
        return replace(fleet_wide, given=fleet_wide.given | self.given, **{
            name: getattr(self, name) for name in self.given
        })

    @property
    def any_request_fault(self) -> bool:
        return bool(self.latency or self.error_rate or self.drop_rate or self.throttle_storm)


@dataclass(frozen=True, slots=True)
class Simulation:
    """What a simulated (process-free) machine prints and how it ends."""

    duration: tuple[float, float] = (1.0, 1.0)
    exit_code: int = 0
    fail_ratio: float = 0.0
    """Share of runs that exit with ``fail_exit_code`` instead (seeded, per machine)."""
    fail_exit_code: int = 1
    output: str = DEFAULT_SIM_OUTPUT
    lines: int = 1
    error: str = ""


@dataclass(frozen=True, slots=True)
class MachineSpec:
    name: str
    kind: str
    os: str
    subscription: str
    resource_group: str
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    executor: str = "auto"
    """``process`` runs scripts on this host (bash, or pwsh for Windows) and fails a run the
    host cannot start; ``simulated`` plays ``simulate``; ``auto`` (the default) is ``process``
    where the host has the machine's shell, else a stand-in that says so (:mod:`stand_in`)."""
    agent: str = "ready"
    power: str = "running"
    status: str = "connected"
    agent_version: str = ""
    extensions_allowlist: tuple[str, ...] = ()
    """An Arc agent's local ``extensions.allowlist`` (``Publisher/Type``; ``Allow/None``
    allows nothing); empty allows every extension."""
    extensions_blocklist: tuple[str, ...] = ()
    extensions_enabled: bool = True
    config_mode: str = "full"
    """``monitor`` blocks script-running extensions, Run Command's handler among them."""
    simulate: Simulation = field(default_factory=Simulation)
    faults: Faults = field(default_factory=Faults)
    scale_set: str = ""
    """The scale set this VM belongs to ('' for a standalone VM)."""
    orchestration: str = ""
    """``Uniform`` (an instance under the scale set) or ``Flexible`` (an ordinary VM whose
    ``properties.virtualMachineScaleSet.id`` names the set); '' for a standalone VM."""
    instance_id: str = ""
    """A Uniform instance's decimal instance id ("0", "1", ...)."""

    @property
    def uniform(self) -> bool:
        return self.orchestration == "Uniform"


@dataclass(frozen=True, slots=True)
class ScaleSetSpec:
    """A VM scale set: the resource itself (its instances are ``MachineSpec``s)."""

    name: str
    orchestration: str
    os: str
    subscription: str
    resource_group: str
    location: str
    capacity: int
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FleetSpec:
    machines: tuple[MachineSpec, ...]
    flush_interval: float = 15.0
    """How often agents report tails and append to blobs (the Linux handler's 15 s ticker)."""
    pickup_delay: float = 0.0
    """Seconds before an agent notices a new run command (the guest agent polls goal state)."""
    agent_timeout: float = 60.0
    """How long a VM run command waits for a Not Ready agent before failing."""
    timeout_state: str = "Failed"
    seed: int = 0
    tenant: str = DEFAULT_TENANT
    account: str = "fleetrunsandbox"
    account_key: str = field(default_factory=new_account_key, repr=False)
    """``storage.key``, else random per fleet loaded: a key known to others would let any
    local user sign a SAS and read or plant run output."""
    containers: tuple[str, ...] = ("fleetrun",)
    max_append_block: int | None = None
    """The largest Append Block the storage takes, below the service's own limits (4 MiB,
    100 MiB from x-ms-version 2022-11-02); None keeps those. The agent uploads each flush's
    output as one block, so a burst over it never reaches the blob, as on Azure."""
    throttle: Throttle = field(default_factory=Throttle)
    principals: tuple[Principal, ...] = ()
    """Callers besides the sandbox's own token, each with its own ARM buckets."""
    caller: str = ""
    """``sandbox.caller``: the principal whose token ``--fleet sandbox:FILE`` presents
    ("": the sandbox's own, Owner everywhere), to see the fleet as that caller would."""
    storage_accounts: tuple[StorageAccountSpec, ...] = ()
    """``[[storage_accounts]]``; the ``[storage]`` account joins them where absent
    (``core.sandbox.storage_arm.accounts_of``)."""
    faults: Faults = Faults()
    scale_sets: tuple[ScaleSetSpec, ...] = ()

    @property
    def subscriptions(self) -> list[str]:
        return sorted({m.subscription for m in self.machines})


def load_fleet(path: Path) -> FleetSpec:
    """Read and check a fleet file (``~`` and ``~user`` in ``path`` are expanded); like an
    inventory, it must be the user's own and writable by no one else."""
    try:
        path = expand_user(path)
        # It says what runs where, as root on this machine by default: it must be the
        # user's own, as an inventory must.
        check_trusted(path)
        data = parse_toml(path.read_text(encoding="utf-8"))
    except UntrustedFileError as exc:
        raise FleetFileError(str(exc)) from None
    except UnknownUserError as exc:
        raise FleetFileError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise FleetFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(f"{path}: not valid TOML: {exc}") from None
    except ValueError:  # a NUL in the name: no file can have it
        raise FleetFileError(f"{str(path)!r}: not a valid file name") from None
    except OSError as exc:
        raise FleetFileError(f"{path}: cannot read the fleet file: {exc.strerror}") from None
    try:
        return parse_fleet(data)
    except FleetFileError as exc:
        raise FleetFileError(f"{path}: {exc}") from None


def default_fleet() -> FleetSpec:
    """The built-in demo fleet, shipped as ``default_fleet.toml``."""
    text = resources.files(__package__).joinpath("default_fleet.toml").read_text("utf-8")
    return parse_fleet(tomllib.loads(text))


def parse_fleet(data: Mapping[str, Any]) -> FleetSpec:
    """A checked fleet from already-parsed TOML."""
    read.only(data, "", {"sandbox", "storage", "throttle", "principals", "roles", "faults",
                         "defaults", "machines", "storage_accounts", "scale_sets"})
    sandbox = read.table(data, "sandbox")
    read.only(sandbox, "sandbox.", {"flush_interval", "pickup_delay", "agent_timeout",
                                "timeouts_report_as", "seed", "tenant", "caller"})
    storage = read.table(data, "storage")
    read.only(storage, "storage.", {"account", "key", "containers", "max_append_block"})
    defaults = read.table(data, "defaults")
    raw_machines = data.get("machines", [])
    raw_sets = data.get("scale_sets", [])
    if not isinstance(raw_sets, list):
        raise FleetFileError("scale_sets: a list of [[scale_sets]] tables")
    if not isinstance(raw_machines, list) or not (raw_machines or raw_sets):
        raise FleetFileError("machines: at least one [[machines]] entry is required")
    machines: list[MachineSpec] = []
    seen: dict[tuple[str, str, str], str] = {}
    entries: list[tuple[str, list[MachineSpec]]] = []
    for index, raw in enumerate(raw_machines):
        if not isinstance(raw, dict):
            raise FleetFileError(f"machines[{index}]: must be a table")
        entries.append((f"machines[{index}]", _machines(f"machines[{index}].",
                                                         {**defaults, **raw})))
    scale_sets: list[ScaleSetSpec] = []
    for index, raw in enumerate(raw_sets):
        where = f"scale_sets[{index}]"
        if not isinstance(raw, dict):
            raise FleetFileError(f"{where}: must be a table")
        scale_set, members = _scale_set(where + ".", {**defaults, **raw})
        key = (scale_set.subscription.lower(), scale_set.resource_group.lower(),
               "vmss/" + scale_set.name.lower())
        if key in seen:
            raise FleetFileError(f"{where}.name: {scale_set.name!r} is already used by "
                                 f"{seen[key]}; scale set names must be unique per resource "
                                 "group (case-insensitive)")
        seen[key] = where
        scale_sets.append(scale_set)
        entries.append((where, members))
    for where, specs in entries:
        for spec in specs:
            key = (spec.subscription.lower(), spec.resource_group.lower(), spec.name.lower())
            if spec.uniform:  # a child of its scale set, not a VM of the resource group
                machines.append(spec)
                continue
            if key in seen:
                raise FleetFileError(
                    f"{where}.name: {spec.name!r} is already used by "
                    f"{seen[key]} in resource group {spec.resource_group!r}; "
                    "names must be unique per resource group (case-insensitive)"
                )
            seen[key] = where
            machines.append(spec)

    account = read.text(storage, "account", "storage.", "fleetrunsandbox")
    if not _ACCOUNT.match(account):
        raise FleetFileError(
            f"storage.account: {account!r} is not allowed; 3-24 lowercase letters and digits"
        )
    if account in _RESERVED_ACCOUNTS:
        raise FleetFileError(
            f"storage.account: {account!r} is not allowed; ARM paths begin with "
            f"/{account}, so the blob account cannot be named "
            f"{' or '.join(sorted(_RESERVED_ACCOUNTS))}"
        )
    containers = storage.get("containers", ["fleetrun"])
    if not isinstance(containers, list) or not all(isinstance(c, str) for c in containers):
        raise FleetFileError("storage.containers: a list of container names")
    for name in containers:
        if not _CONTAINER.match(name):
            raise FleetFileError(
                f"storage.containers: {name!r} is not a valid container name "
                "(3-63 lowercase letters, digits and single hyphens)"
            )
    timeout_state = read.text(sandbox, "timeouts_report_as", "sandbox.", "Failed")
    read.choice(timeout_state, "sandbox.timeouts_report_as", TIMEOUT_STATES)
    seed = sandbox.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FleetFileError("sandbox.seed: an integer")
    if "key" in storage:
        _check_account_key(read.text(storage, "key", "storage.", None))
    principals = parse_principals(data.get("principals", []),
                                  parse_custom_roles(data.get("roles", [])))
    caller = read.text(sandbox, "caller", "sandbox.", "")
    if caller and caller.lower() not in {p.name.lower() for p in principals}:
        raise FleetFileError(f"sandbox.caller: {caller!r} is not a principal; allowed: "
                             + (", ".join(repr(p.name) for p in principals)
                                or "the name of a [[principals]] entry (there is none)"))
    return FleetSpec(
        machines=tuple(machines),
        flush_interval=read.duration(sandbox, "flush_interval", "sandbox.", 15.0, minimum=0.05),
        pickup_delay=read.duration(sandbox, "pickup_delay", "sandbox.", 0.0),
        agent_timeout=read.duration(sandbox, "agent_timeout", "sandbox.", 60.0),
        timeout_state=timeout_state,
        seed=seed,
        tenant=read.text(sandbox, "tenant", "sandbox.", DEFAULT_TENANT),
        account=account,
        account_key=(read.text(storage, "key", "storage.", None) if "key" in storage
                     else new_account_key()),
        containers=tuple(containers),
        max_append_block=read.size(storage, "max_append_block", "storage.",
                               MAX_APPEND_BLOCK_CEILING),
        throttle=parse_throttle(read.table(data, "throttle")),
        principals=principals,
        caller=caller,
        storage_accounts=parse_storage_accounts(
            data.get("storage_accounts", []), own_account=account,
            where_first=(machines[0].subscription, machines[0].resource_group,
                         machines[0].location)),
        faults=_faults(read.table(data, "faults"), "faults.", machine=False),
        scale_sets=tuple(scale_sets),
    )


def _scale_set(where: str, raw: Mapping[str, Any]) -> tuple[ScaleSetSpec, list[MachineSpec]]:
    """A ``[[scale_sets]]`` entry: the set, and its instances as machines.

    Uniform instances are named ``{set}_{instance id}`` (ids 0, 1, ...); Flexible members are
    ordinary VMs named ``{set}_{8 hex digits}``, as Azure names them.
    """
    read.only(raw, where, {"name", "orchestration", "count", "os", "subscription",
                           "resource_group", "location", "tags", "executor", "agent", "power",
                           "agent_version", "simulate", "faults"})
    name = read.text(raw, "name", where, None)
    if not _NAME.match(name) or len(name) > 40:
        raise FleetFileError(f"{where}name: {name!r} is not a valid scale set name (1-40 "
                             "letters, digits, '-', '_' and '.', starting with a letter or "
                             "digit)")
    orchestration = read.choice(read.text(raw, "orchestration", where, "Uniform"),
                                where + "orchestration", ORCHESTRATIONS)
    count = raw.get("count", 2)
    if (not isinstance(count, int) or isinstance(count, bool)
            or not 1 <= count <= MAX_SCALE_SET_INSTANCES):
        raise FleetFileError(f"{where}count: the number of instances, an integer from 1 to "
                             f"{MAX_SCALE_SET_INSTANCES}")
    as_vm = {key: value for key, value in raw.items()
             if key not in ("name", "orchestration", "count")}
    base = _machines(where, {**as_vm, "name": name, "kind": "vm"})[0]
    members = []
    for n in range(count):
        if orchestration == "Uniform":
            member = replace(base, name=f"{name}_{n}", instance_id=str(n))
        else:
            seed = f"{base.subscription}/{base.resource_group}/{name}/{n}".lower()
            suffix = hashlib.sha256(seed.encode()).hexdigest()[:8]
            member = replace(base, name=f"{name}_{suffix}")
        members.append(replace(member, scale_set=name, orchestration=orchestration))
    scale_set = ScaleSetSpec(name=name, orchestration=orchestration, os=base.os,
                             subscription=base.subscription,
                             resource_group=base.resource_group, location=base.location,
                             capacity=count, tags=dict(base.tags))
    return scale_set, members


def _machines(where: str, raw: Mapping[str, Any]) -> list[MachineSpec]:
    read.only(raw, where, {"name", "count", "kind", "os", "subscription", "resource_group",
                       "location", "tags", "executor", "agent", "power", "status",
                       "agent_version", "simulate", "faults", *_AGENT_CONFIG})
    name = read.text(raw, "name", where, None)
    kind = read.choice(read.text(raw, "kind", where, "vm"), where + "kind", KINDS)
    os_type = read.choice(read.text(raw, "os", where, "linux"), where + "os", OSES)
    tags = raw.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise FleetFileError(f"{where}tags: a table of string values")
    for tag, value in tags.items():
        read.printable(tag, f"{where}tags")
        read.printable(value, f"{where}tags.{shown_key(tag)}")
    count = raw.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100_000:
        raise FleetFileError(f"{where}count: an integer from 1 to 100000")
    if count > 1:
        _check_template(name, f"{where}name")
    base = MachineSpec(
        name=name,
        kind=kind,
        os=os_type,
        subscription=read.text(raw, "subscription", where, None),
        resource_group=read.text(raw, "resource_group", where, None),
        location=read.text(raw, "location", where, None).replace(" ", "").lower(),
        tags=dict(tags),
        executor=_choose(raw, "executor", where, "auto", EXECUTORS),
        agent=_choose(raw, "agent", where, "ready", VM_AGENT),
        power=_choose(raw, "power", where, "running", VM_POWER),
        status=_choose(raw, "status", where, "connected", ARC_STATUS),
        agent_version=read.text(raw, "agent_version", where, ""),
        extensions_allowlist=_extension_list(raw, "extensions_allowlist", where),
        extensions_blocklist=_extension_list(raw, "extensions_blocklist", where),
        extensions_enabled=_flag(raw, "extensions_enabled", where, True),
        config_mode=_choose(raw, "config_mode", where, "full", CONFIG_MODES),
        simulate=_simulation(read.table(raw, "simulate", where), where + "simulate."),
        faults=_faults(read.table(raw, "faults", where), where + "faults.", machine=True),
    )
    for key in ("agent", "power"):
        if kind == "arc" and key in raw:
            raise FleetFileError(f"{where}{key}: is for VMs; Arc machines use status")
    if kind == "vm" and "status" in raw:
        raise FleetFileError(f"{where}status: is for Arc machines; VMs use agent and power")
    for key in _AGENT_CONFIG:
        if kind == "vm" and key in raw:
            raise FleetFileError(f"{where}{key}: is for Arc machines (azcmagent config)")
    specs = []
    for n in range(1, count + 1):
        expanded = name.format(n=n) if count > 1 else name  # a template checked above
        if not _NAME.match(expanded):
            raise FleetFileError(
                f"{where}name: {expanded!r} is not a valid machine name "
                "(1-54 letters, digits, '-', '_' and '.', starting with a letter or digit)"
            )
        specs.append(replace(base, name=expanded))
    return specs


_AGENT_CONFIG = ("extensions_allowlist", "extensions_blocklist", "extensions_enabled",
                 "config_mode")
"""An Arc agent's local settings (``azcmagent config``), as its machine's agentConfiguration
reports them."""


def _extension_list(raw: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(
            isinstance(item, str) and _EXTENSION.match(item) for item in value):
        raise FleetFileError(
            f"{where}{key}: a list of extensions as Publisher/Type, e.g. "
            '["microsoft.cplat.core/runcommandhandlerlinux"] ("Allow/None" allows nothing)')
    return tuple(value)


def _flag(raw: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise FleetFileError(f"{where}{key}: true or false")
    return value


def _simulation(raw: Mapping[str, Any], where: str) -> Simulation:
    read.only(raw, where, {"duration", "exit_code", "fail_ratio", "fail_exit_code", "output",
                       "lines", "error"})
    duration_raw = raw.get("duration", 1.0)
    if isinstance(duration_raw, list):
        if len(duration_raw) != 2:
            raise FleetFileError(f"{where}duration: a duration or a [low, high] pair")
        low = read.parse_duration(duration_raw[0], where + "duration")
        high = read.parse_duration(duration_raw[1], where + "duration")
        if high < low:
            raise FleetFileError(f"{where}duration: the high end is below the low end")
        duration = (low, high)
    else:
        single = read.parse_duration(duration_raw, where + "duration")
        duration = (single, single)
    lines = read.integer(raw, "lines", where, 1, 0, 1_000_000)
    return Simulation(
        duration=duration,
        exit_code=read.integer(raw, "exit_code", where, 0, -(2**31), 2**31 - 1),
        fail_ratio=read.ratio(raw, "fail_ratio", where),
        fail_exit_code=read.integer(raw, "fail_exit_code", where, 1, -(2**31), 2**31 - 1),
        output=read.text(raw, "output", where, DEFAULT_SIM_OUTPUT),
        lines=lines,
        error=read.text(raw, "error", where, ""),
    )


def _faults(raw: Mapping[str, Any], where: str, *, machine: bool) -> Faults:
    keys = {"latency", "error_rate", "drop_rate", "throttle_storm", "stuck", "blob_delay",
            "disconnect_after", "delete_errors", "managed_forbidden"}
    read.only(raw, where, keys)
    storm = None
    if "throttle_storm" in raw:
        table = raw["throttle_storm"]
        if not isinstance(table, dict):
            raise FleetFileError(f"{where}throttle_storm: a table with every and lasting")
        read.only(table, where + "throttle_storm.", {"every", "lasting"})
        every = read.duration(table, "every", where + "throttle_storm.", None, minimum=0.1)
        lasting = read.duration(table, "lasting", where + "throttle_storm.", None)
        if lasting >= every:
            raise FleetFileError(f"{where}throttle_storm.lasting: must be shorter than every")
        storm = Storm(every, lasting)
    stuck = raw.get("stuck", False)
    if not isinstance(stuck, bool):
        raise FleetFileError(f"{where}stuck: true or false")
    forbidden = raw.get("managed_forbidden", False)
    if not isinstance(forbidden, bool):
        raise FleetFileError(f"{where}managed_forbidden: true or false")
    disconnect = raw.get("disconnect_after")
    return Faults(
        latency=read.duration(raw, "latency", where, 0.0),
        error_rate=read.ratio(raw, "error_rate", where),
        drop_rate=read.ratio(raw, "drop_rate", where),
        throttle_storm=storm,
        stuck=stuck,
        blob_delay=read.duration(raw, "blob_delay", where, 0.0),
        disconnect_after=None if disconnect is None else read.parse_duration(
            disconnect, where + "disconnect_after"),
        delete_errors=read.integer(raw, "delete_errors", where, 0, 0, 1_000_000),
        managed_forbidden=forbidden,
        given=frozenset(raw),
    )


# ----------------------------------------------------------------------------- checks


def _choose(
    raw: Mapping[str, Any], key: str, where: str, default: str, allowed: tuple[str, ...]
) -> str:
    return read.choice(read.text(raw, key, where, default), where + key, allowed)


def _check_template(name: str, where: str) -> None:
    """A name with ``count``: ``{n}``, with at most a width or a base, before it is expanded.

    ``str.format`` takes any format spec: ``{n:>999999999}`` is a gigabyte per name and
    ``{n.real}`` or ``{n[0]}`` reach into the integer. Only the ``{n}`` forms that make a
    machine name are let through, as Azure limits names before anything is made.
    """
    allowed = ("only the {n} placeholder is allowed, as {n}, {n:02} or {n:03d} (a width of "
               "up to 2 digits; base d, x or X)")
    try:
        fields = [(field, spec, conversion)
                  for _, field, spec, conversion in string.Formatter().parse(name)
                  if field is not None]
    except ValueError:
        raise FleetFileError(f"{where}: unbalanced {{ or }}; {allowed}") from None
    if not fields:
        raise FleetFileError(f"{where}: with count > 1 the name needs a {{n}} placeholder")
    if any(field != "n" or conversion is not None or not _TEMPLATE_SPEC.match(spec or "")
           for field, spec, conversion in fields):
        raise FleetFileError(f"{where}: {allowed}")


def _check_account_key(key: str) -> None:
    try:
        decoded = base64.b64decode(key, validate=True)
    except binascii.Error:
        decoded = b""
    if not decoded:
        raise FleetFileError("storage.key: not base64; give the account key as Azure shows "
                             "it (base64, e.g. from `openssl rand -base64 64`), or leave it "
                             "out for a random one")


