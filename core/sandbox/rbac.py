"""ARM's role-based access control, as the sandbox plays it: roles, assignments, the check.

A fleet file's ``[[principals]]`` may carry ``roles = [{ role = "Reader", scope = "/subscriptions/
<id>/resourceGroups/<rg>" }, ...]``; a principal without ``roles`` holds Owner at ``/`` (so
fleets written before roles keep working), as does the sandbox's own token. ``[[roles]]``
defines custom roles (``name``, ``actions``, ``not_actions``). The built-in roles below are
Azure's published definitions, trimmed to the providers the sandbox serves.

ARM allows an action at a scope when an assignment at that scope or above it has a role
whose ``actions`` match and whose own ``notActions`` do not (case-insensitive, ``*`` any run
of characters); otherwise 403 ``AuthorizationFailed`` naming the action and the scope
(reference ``azure-run-command.md`` 2.6). ``GET {scope}/providers/Microsoft.Authorization/
permissions`` lists the caller's roles in effect at a scope, one entry per assignment.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.sandbox import fleet_fields as read
from core.sandbox.errors import ArmError
from core.sandbox.fleet_fields import FleetFileError


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()

    def grants(self, action: str) -> bool:
        return (any(_covers(p, action) for p in self.actions)
                and not any(_covers(p, action) for p in self.not_actions))

    def permission(self) -> dict[str, list[str]]:
        """The entry ``value[]`` of the permissions answer holds for this role."""
        return {"actions": list(self.actions), "notActions": list(self.not_actions),
                "dataActions": [], "notDataActions": []}


BUILT_IN_ROLES: dict[str, Role] = {role.name.lower(): role for role in (
    Role("Owner", ("*",)),
    Role("Contributor", ("*",), ("Microsoft.Authorization/*/Delete",
                                 "Microsoft.Authorization/*/Write",
                                 "Microsoft.Authorization/elevateAccess/Action")),
    Role("Reader", ("*/read",)),
    Role("Virtual Machine Contributor", (
        "Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*",
        "Microsoft.Compute/locations/*", "Microsoft.Compute/virtualMachines/*",
        "Microsoft.Compute/virtualMachineScaleSets/*", "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read",
        "Microsoft.Storage/storageAccounts/read")),
    Role("Azure Connected Machine Resource Administrator", (
        "Microsoft.HybridCompute/machines/*", "Microsoft.HybridCompute/machines/extensions/*",
        "Microsoft.HybridCompute/machines/runCommands/*",
        "Microsoft.HybridCompute/locations/*", "Microsoft.HybridCompute/*/read",
        "Microsoft.Resources/deployments/*")),
)}

@dataclass(frozen=True, slots=True)
class Assignment:
    role: Role
    scope: str
    """Lowercase, no trailing ``/``; ``""`` is the root ``/``."""

    def covers(self, scope: str) -> bool:
        return not self.scope or scope == self.scope or scope.startswith(self.scope + "/")


OWNER_EVERYWHERE = (Assignment(BUILT_IN_ROLES["owner"], ""),)
"""What a principal without ``roles`` holds, and the sandbox's own token."""

_SCOPE = re.compile(r"^/subscriptions/[^/]+(/resourceGroups/[^/]+(/providers/.+)?)?$",
                    re.IGNORECASE)


def _covers(pattern: str, action: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, action, re.IGNORECASE | re.DOTALL) is not None


def normal_scope(path: str) -> str:
    return path.strip().rstrip("/").lower()


def parse_custom_roles(raw: object) -> dict[str, Role]:
    """``[[roles]]``: custom roles by lowercase name."""
    if not isinstance(raw, list):
        raise FleetFileError("roles: a list of [[roles]] tables with name, actions and "
                             "not_actions")
    roles: dict[str, Role] = {}
    for index, entry in enumerate(raw):
        where = f"roles[{index}]."
        if not isinstance(entry, dict):
            raise FleetFileError(f"roles[{index}]: a table with name, actions and not_actions")
        read.only(entry, where, {"name", "actions", "not_actions"})
        name = read.text(entry, "name", where, None)
        if name.lower() in BUILT_IN_ROLES or name.lower() in roles:
            raise FleetFileError(f"{where}name: {name!r} is already a role; names must be "
                                 "unique (built-in: " + ", ".join(
                                     r.name for r in BUILT_IN_ROLES.values()) + ")")
        roles[name.lower()] = Role(name, _actions(entry, "actions", where),
                                   _actions(entry, "not_actions", where))
    return roles


def _actions(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FleetFileError(f"{where}{key}: a list of actions such as "
                             "'Microsoft.HybridCompute/machines/runCommands/read' or '*/read'")
    return tuple(v.strip() for v in value)


def parse_assignments(raw: object, where: str, roles: Mapping[str, Role]
                      ) -> tuple[Assignment, ...]:
    """A principal's ``roles``: each ``{ role, scope }``; the scope "/" or a subscription,
    resource group or resource id."""
    if not isinstance(raw, list):
        raise FleetFileError(f"{where}roles: a list of {{ role = ..., scope = ... }} tables")
    known = {**BUILT_IN_ROLES, **roles}
    found: list[Assignment] = []
    for index, entry in enumerate(raw):
        at = f"{where}roles[{index}]."
        if not isinstance(entry, dict):
            raise FleetFileError(f"{where}roles[{index}]: a table with role and scope")
        read.only(entry, at, {"role", "scope"})
        name = read.text(entry, "role", at, None)
        role = known.get(name.lower())
        if role is None:
            raise FleetFileError(f"{at}role: {name!r} is not a role; allowed: "
                                 + ", ".join(r.name for r in known.values()))
        scope = read.text(entry, "scope", at, None).strip()
        if scope != "/" and not _SCOPE.match(scope.rstrip("/")):
            raise FleetFileError(f"{at}scope: {scope!r} is not a scope; allowed: '/', "
                                 "'/subscriptions/<id>' or '/subscriptions/<id>/resourceGroups/"
                                 "<name>' (or a resource id below it)")
        found.append(Assignment(role, normal_scope(scope)))
    return tuple(found)


def required_action(route: str, kind: str, method: str) -> str | None:
    """The action ARM checks for a route of the sandbox; None for calls it does not gate
    here (the permissions read itself, Resource Graph, long-running operation polls)."""
    provider = {"arc": "Microsoft.HybridCompute/machines",
                "vmss": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"}.get(
                    kind, "Microsoft.Compute/virtualMachines")
    verb = {"GET": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(method)
    if route in ("vm", "vmss_vm", "machine", "vm_list", "machine_list"):
        return f"{provider}/read"
    if route == "vm_instance_view":
        return f"{provider}/instanceView/read"
    if route in ("run_commands", "run_command") and verb is not None:
        return f"{provider}/runCommands/{verb}"
    if route == "vm_run_command_action":
        return f"{provider}/runCommand/action"
    if route in ("builtin_run_commands", "builtin_run_command"):
        return "Microsoft.Compute/locations/runCommands/read"
    if route == "storage_accounts":
        return "Microsoft.Storage/storageAccounts/read"
    if route == "blob_container" and verb is not None:
        return f"Microsoft.Storage/storageAccounts/blobServices/containers/{verb}"
    return None


@dataclass(frozen=True, slots=True)
class Rbac:
    """Who holds which roles where: principal name (lowercase) -> assignments; a principal
    absent from ``assignments`` holds Owner at ``/``."""

    assignments: Mapping[str, tuple[Assignment, ...]]

    def held(self, principal: str) -> tuple[Assignment, ...]:
        return self.assignments.get(principal.lower(), OWNER_EVERYWHERE)

    def allows(self, principal: str, action: str, scope: str) -> bool:
        where = normal_scope(scope)
        return any(a.covers(where) and a.role.grants(action) for a in self.held(principal))

    def permissions(self, principal: str, scope: str) -> list[dict[str, list[str]]]:
        """``value[]`` of the permissions answer at ``scope``: the roles in effect there."""
        where = normal_scope(scope)
        return [a.role.permission() for a in self.held(principal) if a.covers(where)]

    def check(self, principal: str, action: str, scope: str) -> None:
        """Raises: ArmError: 403 AuthorizationFailed when no assignment allows it."""
        if not self.allows(principal, action, scope):
            raise authorization_failed(principal, action, scope)


def object_id(principal: str) -> str:
    """A stable object id for a sandbox principal (Entra ID gives every caller one)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fleetrun-sandbox:principal:{principal}"))


def authorization_failed(principal: str, action: str, scope: str) -> ArmError:
    """ARM's 403 for an action the caller's roles do not grant."""
    return ArmError(403, "AuthorizationFailed",
                    f"The client '{principal}' with object id '{object_id(principal)}' does not "
                    f"have authorization to perform action '{action}' over scope '{scope}' or "
                    "the scope is invalid. If access was recently granted, please refresh your "
                    "credentials.")


def rbac_of(principals: Sequence[tuple[str, tuple[Assignment, ...] | None]]) -> Rbac:
    return Rbac({name.lower(): held for name, held in principals if held is not None})
