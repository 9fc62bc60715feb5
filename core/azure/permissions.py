"""Who may run where: ARM's permissions answer, read as ARM reads it (pure, no I/O).

``GET {scope}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01``
answers ``value[]``, one entry per role the caller holds at (or above) the scope, each with
``actions``, ``notActions``, ``dataActions`` and ``notDataActions``. ARM allows an action
when some entry's ``actions`` match it and that same entry's ``notActions`` do not: a
``notActions`` entry only subtracts from its own role, never from another role's grant.
Matching ignores case, and ``*`` stands for any run of characters, ``/`` included (``*``,
``*/read``, ``Microsoft.HybridCompute/machines/*``).

:func:`fleet_verdicts` marks each machine may run / may only read / may not even read from
the answers per scope, and :func:`summary_line` says it in one line for compose and the
CLI's preview.
"""

from __future__ import annotations

import enum
import functools
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.errors import FleetrunError
from core.model import HealthStatus, Machine, MachineKind

API_VERSION = "2022-04-01"

ARC_RUN = "Microsoft.HybridCompute/machines/runCommands/write"
ARC_READ = "Microsoft.HybridCompute/machines/runCommands/read"
VM_MANAGED_RUN = "Microsoft.Compute/virtualMachines/runCommands/write"
VM_ACTION_RUN = "Microsoft.Compute/virtualMachines/runCommand/action"
VM_READ = "Microsoft.Compute/virtualMachines/runCommands/read"
_VMSS_VM = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
VMSS_MANAGED_RUN = f"{_VMSS_VM}/runCommands/write"
VMSS_ACTION_RUN = f"{_VMSS_VM}/runCommand/action"
VMSS_READ = f"{_VMSS_VM}/runCommands/read"

ARC_ROLE = "Azure Connected Machine Resource Administrator"
VM_ROLE = "Virtual Machine Contributor"

_FIELDS = (("actions", "actions"), ("notActions", "not_actions"),
           ("dataActions", "data_actions"), ("notDataActions", "not_data_actions"))


class BadPermissionsAnswer(FleetrunError, ValueError):
    """A permissions answer that cannot be read; the message names the field."""


@functools.lru_cache(maxsize=4096)
def _pattern(entry: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in entry.split("*")),
                      re.IGNORECASE | re.DOTALL)


def action_matches(pattern: str, action: str) -> bool:
    """Whether a role's ``actions`` or ``notActions`` entry covers ``action``, as ARM reads it."""
    return _pattern(pattern).fullmatch(action) is not None


@dataclass(frozen=True, slots=True)
class Permission:
    """One entry of ``value[]``: one role's grant, with its own exclusions."""

    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def allows(self, action: str) -> bool:
        return (any(action_matches(p, action) for p in self.actions)
                and not any(action_matches(p, action) for p in self.not_actions))

    def allows_data(self, action: str) -> bool:
        return (any(action_matches(p, action) for p in self.data_actions)
                and not any(action_matches(p, action) for p in self.not_data_actions))


@dataclass(frozen=True, slots=True)
class Permissions:
    """What the caller may do at one scope: the union of its entries."""

    entries: tuple[Permission, ...] = ()

    def allows(self, action: str) -> bool:
        return any(entry.allows(action) for entry in self.entries)

    def allows_data(self, action: str) -> bool:
        return any(entry.allows_data(action) for entry in self.entries)


def parse_permissions(answer: str | bytes | object, scope: str = "") -> Permissions:
    """The permissions in an answer: its text, or the JSON already decoded.

    Raises:
        BadPermissionsAnswer: Not JSON, or a field of the wrong shape (named in the message).
    """
    where = f"the permissions answer for {scope}" if scope else "the permissions answer"
    body = answer
    if isinstance(answer, str | bytes):
        try:
            body = json.loads(answer)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadPermissionsAnswer(f"{where} is not JSON", where=scope) from None
    if not isinstance(body, Mapping) or not isinstance(body.get("value"), list):
        raise BadPermissionsAnswer(f"{where}: 'value' must be a list of permissions",
                                   where=scope)
    entries: list[Permission] = []
    for index, raw in enumerate(body["value"]):
        if not isinstance(raw, Mapping):
            raise BadPermissionsAnswer(f"{where}: value[{index}] must be an object",
                                       where=scope)
        lists: dict[str, tuple[str, ...]] = {}
        for key, attribute in _FIELDS:
            items = raw.get(key, [])
            if items is None:
                items = []
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise BadPermissionsAnswer(
                    f"{where}: value[{index}].{key} must be a list of action strings",
                    where=scope)
            lists[attribute] = tuple(items)
        entries.append(Permission(**lists))
    return Permissions(tuple(entries))


def permissions_path(scope: str) -> str:
    """The ARM path of the permissions read for ``scope`` (a subscription or resource group)."""
    return (f"{scope.rstrip('/')}/providers/Microsoft.Authorization/permissions"
            f"?api-version={API_VERSION}")


def machine_scopes(machine_id: str) -> tuple[str, ...]:
    """The scopes an answer may be known for, most specific first: the machine's resource
    id, its resource group, its subscription (lowercase, as scopes compare)."""
    parts = [p for p in machine_id.lower().split("/") if p]
    found: list[str] = []
    if len(parts) >= 2 and parts[0] == "subscriptions":
        found.append(f"/subscriptions/{parts[1]}")
        if len(parts) >= 4 and parts[2] == "resourcegroups":
            found.append(f"/subscriptions/{parts[1]}/resourcegroups/{parts[3]}")
            if len(parts) > 4:
                found.append("/" + "/".join(parts))
    return tuple(reversed(found))


def resource_group_scope(machine_id: str) -> str:
    """The scope whose permissions answer covers the machine: its resource group's id
    (lowercase), or "" when the id names none."""
    scopes = machine_scopes(machine_id)
    return next((s for s in scopes if s.count("/") == 4), "")


class Access(enum.StrEnum):
    """What the caller may do with run commands on one machine."""

    RUN = "may run"
    READ_ONLY = "may only read"
    NO_ACCESS = "may not even read"
    UNKNOWN = "not checked"
    """No permissions answer covers the machine's scope (not asked yet, or it failed)."""


@dataclass(frozen=True, slots=True)
class MachineVerdict:
    """One machine's verdict.

    Attributes:
        granted_by: The action that lets the caller run ("" when it may not, or when the
            machine is not reached through ARM).
        missing: The action a run needs and the caller lacks ("" when it may run).
        role: The built-in role that would grant ``missing``.
    """

    machine_id: str
    access: Access
    granted_by: str = ""
    missing: str = ""
    role: str = ""

    @property
    def reason(self) -> str:
        """One line for a health note or the machine details."""
        if self.access is Access.RUN or self.access is Access.UNKNOWN:
            return self.access.value
        return f"{self.access.value}: needs {self.missing} ({self.role})"


def run_actions(machine: Machine) -> tuple[tuple[str, ...], str, str]:
    """The actions that let the caller run on an Azure machine (managed first, then the
    action API's), the one that lets it read run commands, and the role that has them.

    A Uniform scale set's instance is its own resource type
    (``.../virtualMachineScaleSets/SET/virtualMachines/N``), checked by its own actions.
    """
    if machine.kind is MachineKind.ARC:
        return (ARC_RUN,), ARC_READ, ARC_ROLE
    if "/virtualmachinescalesets/" in machine.id.lower():
        return (VMSS_MANAGED_RUN, VMSS_ACTION_RUN), VMSS_READ, VM_ROLE
    return (VM_MANAGED_RUN, VM_ACTION_RUN), VM_READ, VM_ROLE


def machine_verdict(machine: Machine, permissions: Permissions | None) -> MachineVerdict:
    """Whether the caller may run on ``machine`` given the answer for its scope.

    On a VM the managed run command's ``runCommands/write`` is tried first, then the
    action's ``runCommand/action`` (what the managed -> action fallback can use).
    """
    if machine.kind not in (MachineKind.VM, MachineKind.ARC):
        return MachineVerdict(machine.id, Access.RUN)
    if permissions is None:
        return MachineVerdict(machine.id, Access.UNKNOWN)
    runs, read, role = run_actions(machine)
    for action in runs:
        if permissions.allows(action):
            return MachineVerdict(machine.id, Access.RUN, granted_by=action)
    access = Access.READ_ONLY if permissions.allows(read) else Access.NO_ACCESS
    return MachineVerdict(machine.id, access, missing=runs[0], role=role)


def answer_for(machine_id: str, answers: Mapping[str, Permissions]) -> Permissions | None:
    """The answer for the most specific scope of the machine that has one; None if none.

    An answer for a resource group includes what is granted above it; one for a
    subscription does not see grants made on a resource group, so the more specific wins.
    """
    known = {scope.lower().rstrip("/"): value for scope, value in answers.items()}
    for scope in machine_scopes(machine_id):
        if scope in known:
            return known[scope]
    return None


def fleet_verdicts(
    machines: Iterable[Machine], answers: Mapping[str, Permissions]
) -> list[MachineVerdict]:
    """Each machine's verdict, from the permissions answers by scope (subscription or
    resource group ids, any case): what the fleet screen, compose and the preview show."""
    return [machine_verdict(m, answer_for(m.id, answers)) for m in machines]


def summary_line(verdicts: Sequence[MachineVerdict]) -> str:
    """``you can run on 40 of 52 machines; 12 need `...` (role)``."""
    runnable = sum(1 for v in verdicts if v.access is Access.RUN)
    line = f"you can run on {runnable} of {len(verdicts)} machine" + (
        "" if len(verdicts) == 1 else "s")
    needs = Counter((v.missing, v.role) for v in verdicts if v.missing)
    parts = [f"{count} need{'s' if count == 1 else ''} `{action}` ({role})"
             for (action, role), count in sorted(needs.items(), key=lambda kv: (-kv[1], kv[0]))]
    unknown = sum(1 for v in verdicts if v.access is Access.UNKNOWN)
    if unknown:
        parts.append(f"{unknown} not checked")
    return "; ".join([line, *parts])


def permission_line(machines: Iterable[Machine]) -> str | None:
    """The summary line over ``machines`` from their health (NotPermitted ones named by the
    action they need), for the CLI before a run and compose; None when none is NotPermitted.
    """
    verdicts: list[MachineVerdict] = []
    for machine in machines:
        health = machine.health
        if health.status is not HealthStatus.NOT_PERMITTED:
            verdicts.append(MachineVerdict(machine.id, Access.RUN))
            continue
        found = _NEEDS.search(health.detail)
        action, role = (found["action"], found["role"]) if found else ("", "")
        verdicts.append(MachineVerdict(machine.id, Access.READ_ONLY, missing=action or "?",
                                       role=role or role_for(action)))
    if all(v.access is Access.RUN for v in verdicts):
        return None
    return summary_line(verdicts)


class NothingPermitted(FleetrunError):
    """No selected machine may be run on by the caller: the run is refused before it starts
    (the message is :func:`permission_line`'s)."""


_NEEDS = re.compile(r"needs (?P<action>\S+) \((?P<role>[^)]*)\)")

_AUTHORIZATION_FAILED = re.compile(
    r"perform action '(?P<action>[^']+)' over scope '(?P<scope>[^']+)'", re.IGNORECASE)


def authorization_failure(message: str) -> tuple[str, str] | None:
    """The (action, scope) an ``AuthorizationFailed`` message names; None if it names none.

    A 403 that comes anyway is shown as the missing permission, never as a script failure.
    """
    found = _AUTHORIZATION_FAILED.search(message)
    return (found["action"], found["scope"]) if found else None


def role_for(action: str) -> str:
    """The built-in role fleetrun suggests for a missing run-command action ("" if none)."""
    if action_matches("Microsoft.HybridCompute/*", action):
        return ARC_ROLE
    if action_matches("Microsoft.Compute/*", action):
        return VM_ROLE
    return ""
