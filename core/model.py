"""Plain data: machines, their health, commands, and the state of a run.

Nothing here does I/O. Front ends, backends, the journal and the fan-out engine all speak
in these types.
"""

from __future__ import annotations

import enum
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

MachineId = str

TAIL_BYTES = 4096
"""How much of each stream the instance view keeps: the Linux handler's ``maxTailLen``."""

REDACTED = "***"


SCALE_SET_TAG = "scaleset"
ORCHESTRATION_TAG = "orchestration"
"""The tags fleetrun gives a VM scale set's member (Azure does not): its set's name and its
orchestration mode (``Uniform`` or ``Flexible``); ``--target scaleset:NAME`` reads the first."""


class MachineKind(enum.StrEnum):
    """Where a machine lives, and so which backend reaches it."""

    VM = "vm"
    ARC = "arc"
    SSH = "ssh"
    LOCAL = "local"


class OsType(enum.StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"


class CommandId(enum.StrEnum):
    """The two managed run command types fleetrun sends."""

    SHELL = "RunShellScript"
    POWERSHELL = "RunPowerShellScript"

    @property
    def os(self) -> OsType:
        """The operating system this command type runs on."""
        return OsType.LINUX if self is CommandId.SHELL else OsType.WINDOWS

    @classmethod
    def for_os(cls, os_type: OsType) -> CommandId:
        return cls.SHELL if os_type is OsType.LINUX else cls.POWERSHELL


class RunApi(enum.StrEnum):
    """Which Azure Run Command API a command goes through on a VM."""

    AUTO = "auto"
    """Managed, falling back per machine to the action API where managed cannot be used."""
    MANAGED = "managed"
    ACTION = "action"


class HealthStatus(enum.StrEnum):
    """Agent (or host) health, in one vocabulary for every backend."""

    READY = "Ready"
    NOT_READY = "NotReady"
    DISCONNECTED = "Disconnected"
    AGENT_TOO_OLD = "AgentTooOld"
    BLOCKED = "Blocked"
    """The machine's own agent configuration refuses Run Command (core.azure.local_blocking)."""
    NOT_PERMITTED = "NotPermitted"
    """The caller's Azure role lets it read but not run, or not even read, on this machine
    (from ARM's permissions answer: core.azure.permission_check)."""
    DEALLOCATED = "Deallocated"
    UNREACHABLE = "Unreachable"
    UNKNOWN = "Unknown"

    @property
    def runnable(self) -> bool:
        """Whether a command can be sent. Unknown is tried: the run itself will tell."""
        return self in (HealthStatus.READY, HealthStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Health:
    """What the last health check said about a machine's agent (or SSH reachability)."""

    status: HealthStatus = HealthStatus.UNKNOWN
    detail: str = ""
    agent_version: str | None = None
    checked_at: datetime | None = None
    remedy: tuple[str, ...] = ()
    """Commands, to run on the machine in this order, that lift what keeps runs off it."""

    @property
    def runnable(self) -> bool:
        return self.status.runnable

    @property
    def remedy_line(self) -> str:
        """The remedy as one line to paste into bash or PowerShell (``;`` between commands)."""
        return "; ".join(self.remedy)


@dataclass(frozen=True, slots=True)
class SshEndpoint:
    """Where and as whom an SSH host is reached.

    Empty fields fall back to what the SSH config says for ``host`` (which may be an alias
    there), then to ssh's own defaults.
    """

    host: str
    port: int | None = None
    user: str = ""
    identity_file: str = ""
    become_user: str = ""
    """Run scripts as this user through sudo/su (inventory ``become``); "" = the login user."""
    become_method: str = ""
    """``sudo`` or ``su`` as the inventory says; "" leaves it to the run (sudo by default)."""


@dataclass(frozen=True, slots=True)
class Machine:
    """One target. ``id`` is unique within a fleet (the ARM resource id on Azure)."""

    id: MachineId
    name: str
    kind: MachineKind
    os: OsType
    location: str = ""
    subscription: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    health: Health = field(default_factory=Health)
    address: str = ""
    """Where it is, for people: the host name for SSH, empty where the id is enough."""
    ssh: SshEndpoint | None = None
    """How the SSH backend reaches it (None for machines of other kinds)."""
    computer_name: str = ""
    """What the guest calls itself (``hostname``) when the inventory knows it and it is not
    ``name``; empty otherwise (a scale set instance's is derived: :mod:`core.scale_set_names`)."""

    def with_health(self, health: Health) -> Machine:
        return replace(self, health=health)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A run command input parameter.

    An empty ``name`` makes it unnamed: a positional argument on Linux.
    """

    name: str
    value: str
    protected: bool = False

    @property
    def named(self) -> bool:
        return self.name != ""

    def redacted(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": REDACTED if self.protected else self.value,
            "protected": self.protected,
        }

    def __repr__(self) -> str:
        shown = REDACTED if self.protected else repr(self.value)
        return f"Parameter(name={self.name!r}, value={shown}, protected={self.protected})"


@dataclass(frozen=True, slots=True)
class Command:
    """What to run: one script with its parameters and limits.

    Secrets (protected parameter values, ``run_as_password``) live only in this object,
    in memory. Anything that persists or prints a command uses :meth:`redacted`.
    """

    command_id: CommandId
    script: str
    parameters: tuple[Parameter, ...] = ()
    timeout: int = 3600
    """Seconds; 0 means no limit (as ``timeoutInSeconds`` = 0 does for the handler)."""
    run_as_user: str = ""
    run_as_password: str = field(default="", repr=False)
    async_execution: bool = True
    script_path: str = ""
    """Where the script was read from, if a file (shown, never needed to run)."""
    api: RunApi = RunApi.AUTO
    """On Azure VMs: the managed or the action Run Command API (see :class:`RunApi`)."""
    builtin: str = ""
    """A built-in command id (``ifconfig``, ``IPConfig``...) run instead of ``script``:
    always through the action API, only on machines of its OS."""
    saved_command: str = ""
    """The saved command this was made from, by name; empty for an ad-hoc script."""
    saved_hash: str = ""
    """That saved command's content hash when it ran (``sha256:`` + 12 hex digits): tells
    two versions of one name apart in history."""

    @property
    def public_parameters(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if not p.protected)

    @property
    def protected_parameters(self) -> tuple[Parameter, ...]:
        return tuple(p for p in self.parameters if p.protected)

    def ordered_parameters(self) -> tuple[Parameter, ...]:
        """Public first, then protected, each in given order: the handlers' order."""
        return self.public_parameters + self.protected_parameters

    def secret_values(self) -> tuple[str, ...]:
        values = [p.value for p in self.protected_parameters if p.value]
        if self.run_as_password:
            values.append(self.run_as_password)
        return tuple(values)

    def redacted(self) -> dict[str, Any]:
        """A JSON-ready view with every secret replaced."""
        return {
            "command_id": str(self.command_id),
            "script": self.script,
            "script_path": self.script_path,
            "parameters": [p.redacted() for p in self.parameters],
            "timeout": self.timeout,
            "run_as_user": self.run_as_user,
            "run_as_password": REDACTED if self.run_as_password else "",
            "async_execution": self.async_execution,
            "api": self.api.value,
            "builtin": self.builtin,
            "saved_command": self.saved_command,
            "saved_hash": self.saved_hash,
        }


class RunState(enum.StrEnum):
    """A machine's state within a run (the API's ExecutionState plus our own)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TIMED_OUT = "TimedOut"
    CANCELED = "Canceled"
    SKIPPED = "Skipped"
    NOT_STARTED = "NotStarted"
    UNKNOWN = "Unknown"

    @property
    def terminal(self) -> bool:
        return self not in (RunState.PENDING, RunState.RUNNING, RunState.UNKNOWN)

    @property
    def counts_as_failure(self) -> bool:
        """Whether it spends the error budget."""
        return self in (RunState.FAILED, RunState.TIMED_OUT)

    @property
    def rerunnable(self) -> bool:
        """The states 'rerun failed' picks up."""
        return self in (RunState.FAILED, RunState.TIMED_OUT, RunState.NOT_STARTED)


class Waiting(enum.StrEnum):
    """Why a Pending machine's start request has not gone yet: a live phase, never stored.

    A managed backend's PUT waits for a token of its throttle scope's write budget (Queued),
    or after a 429 waits out ``Retry-After`` while its scope is blocked (Throttled). Not a
    :class:`RunState`: it is no outcome, a machine leaves it within the run, and the
    journal, the run record and exports know only RunStates. SSH and local machines never
    wait so.
    """

    QUEUED = "Queued"
    THROTTLED = "Throttled"


class Stream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


def utc_now() -> datetime:
    return datetime.now(UTC)


_issued_run_ids: set[str] = set()
"""Every id this process handed out: a run's id names its run commands on every machine."""


def new_run_id() -> str:
    """A short, time-sortable id: 8 hex digits of Unix seconds and 6 random ones.

    Short enough that ``fleetrun-<id>`` fits Arc's 36-character run command names. Never
    the same twice in one process, however many runs start in one second: a run command
    PUT under a name still running stops that run ("Update ... stops the previous run
    command"), so a rerun must never reuse its parent's name. Two fleetrun processes
    starting a run in the same second share a name once in 16.7 million pairs (24 random
    bits).
    """
    while True:
        run_id = f"{int(time.time()):08x}{secrets.token_hex(3)}"
        if run_id not in _issued_run_ids:
            _issued_run_ids.add(run_id)
            return run_id


@dataclass(slots=True)
class MachineRun:
    """One machine's part of a run; mutated only by the fan-out engine."""

    machine: Machine
    command: Command
    state: RunState = RunState.PENDING
    waiting: Waiting | None = None
    """While Pending: whether its start request waits on the service's budget (live only:
    the journal and the run record never hold it)."""
    exit_code: int | None = None
    started: datetime | None = None
    ended: datetime | None = None
    error: str = ""
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    stdout_file: str = ""
    stderr_file: str = ""
    masked: int = 0
    """Occurrences of protected values masked (``***``) in its output and error."""

    @property
    def machine_id(self) -> MachineId:
        return self.machine.id

    def elapsed(self, now: datetime | None = None) -> float | None:
        if self.started is None:
            return None
        end = self.ended or now or utc_now()
        return max(0.0, (end - self.started).total_seconds())


@dataclass(slots=True)
class Run:
    """A command sent to a set of machines."""

    run_id: str
    machines: dict[MachineId, MachineRun]
    created: datetime = field(default_factory=utc_now)
    ended: datetime | None = None
    parent_run_id: str = ""
    source_group: str = ""
    """The parent run's output group(s) this run's machines were chosen from (a label)."""
    fleet: str = ""
    target: str = ""
    stop_reason: str = ""
    """Why machines were left NotStarted (error budget, cancel), if they were."""
    pid: int = field(default_factory=os.getpid)

    def commands(self) -> list[Command]:
        seen: dict[int, Command] = {}
        for mr in self.machines.values():
            seen.setdefault(id(mr.command), mr.command)
        return list(seen.values())

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for mr in self.machines.values():
            counts[str(mr.state)] = counts.get(str(mr.state), 0) + 1
        return counts

    @property
    def finished(self) -> bool:
        return self.ended is not None
