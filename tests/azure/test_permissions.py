"""ARM's permissions answer read as ARM reads it, over real built-in role definitions.

The roles are embedded as Azure's docs publish them (built-in roles: General, Compute,
Hybrid + multicloud; fetched 2026-12 through the docs search), so a test never reads a file
outside the repository.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.azure.permissions import (
    ARC_READ,
    ARC_ROLE,
    ARC_RUN,
    VM_ACTION_RUN,
    VM_MANAGED_RUN,
    VM_READ,
    VM_ROLE,
    VMSS_ACTION_RUN,
    VMSS_MANAGED_RUN,
    Access,
    BadPermissionsAnswer,
    Permissions,
    action_matches,
    authorization_failure,
    fleet_verdicts,
    machine_verdict,
    parse_permissions,
    permissions_path,
    role_for,
    summary_line,
)
from core.model import Machine, MachineKind, OsType

READER: dict[str, Any] = {  # acdd72a7-3385-48ef-bd42-f606fba81ae7
    "actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}

VIRTUAL_MACHINE_CONTRIBUTOR: dict[str, Any] = {  # 9980e02c-c2be-4d73-94e8-173b1dc7cf3c
    "actions": [
        "Microsoft.Authorization/*/read", "Microsoft.Compute/availabilitySets/*",
        "Microsoft.Compute/locations/*", "Microsoft.Compute/virtualMachines/*",
        "Microsoft.Compute/virtualMachineScaleSets/*", "Microsoft.Compute/disks/write",
        "Microsoft.Compute/disks/read", "Microsoft.Compute/disks/delete",
        "Microsoft.DevTestLab/schedules/*", "Microsoft.Insights/alertRules/*",
        "Microsoft.Network/applicationGateways/backendAddressPools/join/action",
        "Microsoft.Network/loadBalancers/backendAddressPools/join/action",
        "Microsoft.Network/loadBalancers/inboundNatPools/join/action",
        "Microsoft.Network/loadBalancers/inboundNatRules/join/action",
        "Microsoft.Network/loadBalancers/probes/join/action",
        "Microsoft.Network/loadBalancers/read", "Microsoft.Network/locations/*",
        "Microsoft.Network/networkInterfaces/*",
        "Microsoft.Network/networkSecurityGroups/join/action",
        "Microsoft.Network/networkSecurityGroups/read",
        "Microsoft.Network/publicIPAddresses/join/action",
        "Microsoft.Network/publicIPAddresses/read", "Microsoft.Network/virtualNetworks/read",
        "Microsoft.Network/virtualNetworks/subnets/join/action",
        "Microsoft.RecoveryServices/locations/*",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/backupProtectionIntent/write",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/*/read",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/read",
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/write",
        "Microsoft.RecoveryServices/Vaults/backupPolicies/read",
        "Microsoft.RecoveryServices/Vaults/backupPolicies/write",
        "Microsoft.RecoveryServices/Vaults/read", "Microsoft.RecoveryServices/Vaults/usages/read",
        "Microsoft.RecoveryServices/Vaults/write",
        "Microsoft.ResourceHealth/availabilityStatuses/read", "Microsoft.Resources/deployments/*",
        "Microsoft.Resources/subscriptions/resourceGroups/read", "Microsoft.SqlVirtualMachine/*",
        "Microsoft.Storage/storageAccounts/listKeys/action",
        "Microsoft.Storage/storageAccounts/read", "Microsoft.Support/*"],
    "notActions": [], "dataActions": [], "notDataActions": []}

CONNECTED_MACHINE_RESOURCE_ADMINISTRATOR: dict[str, Any] = {  # cd570a14-e51a-42ad-bac8-...
    "actions": [
        "Microsoft.HybridCompute/machines/*", "Microsoft.HybridCompute/machines/extensions/*",
        "Microsoft.HybridCompute/machines/licenseProfiles/*",
        "Microsoft.HybridCompute/machines/runCommands/*",
        "Microsoft.HybridCompute/machines/UpgradeExtensions/action",
        "Microsoft.HybridCompute/privateLinkScopes/*", "Microsoft.HybridCompute/licenses/*",
        "Microsoft.HybridCompute/locations/*", "Microsoft.HybridCompute/*/read",
        "Microsoft.Resources/deployments/*"],
    "notActions": [], "dataActions": [], "notDataActions": []}

CONTRIBUTOR: dict[str, Any] = {  # b24988ac-6180-42a0-ab88-20f7382dd24c
    "actions": ["*"],
    "notActions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                   "Microsoft.Authorization/elevateAccess/Action",
                   "Microsoft.Blueprint/blueprintAssignments/write",
                   "Microsoft.Blueprint/blueprintAssignments/delete",
                   "Microsoft.Compute/galleries/share/action"],
    "dataActions": [], "notDataActions": []}

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001"


def answer(*entries: dict[str, Any]) -> Permissions:
    return parse_permissions(json.dumps({"value": list(entries)}))


def arc(name: str, rg: str = "rg-a") -> Machine:
    return Machine(f"{SUB}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/machines/{name}",
                   name, MachineKind.ARC, OsType.LINUX)


def vm(name: str, rg: str = "rg-a") -> Machine:
    return Machine(f"{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}",
                   name, MachineKind.VM, OsType.LINUX)


def test_a_reader_may_read_run_commands_everywhere_but_run_nowhere() -> None:
    reader = answer(READER)
    assert reader.allows(ARC_READ) and reader.allows(VM_READ)
    assert not any(reader.allows(a) for a in (ARC_RUN, VM_MANAGED_RUN, VM_ACTION_RUN))
    verdict = machine_verdict(arc("web-1"), reader)
    assert verdict.access is Access.READ_ONLY
    assert (verdict.missing, verdict.role) == (ARC_RUN, ARC_ROLE)
    assert machine_verdict(vm("db-1"), reader).access is Access.READ_ONLY


def test_virtual_machine_contributor_runs_on_vms_by_the_managed_action_not_on_arc() -> None:
    contributor = answer(VIRTUAL_MACHINE_CONTRIBUTOR)
    verdict = machine_verdict(vm("db-1"), contributor)
    assert (verdict.access, verdict.granted_by) == (Access.RUN, VM_MANAGED_RUN)
    assert contributor.allows(VM_ACTION_RUN)
    # It has no */read: on an Arc machine it may not even list run commands.
    arc_verdict = machine_verdict(arc("web-1"), contributor)
    assert arc_verdict.access is Access.NO_ACCESS
    assert arc_verdict.reason == f"may not even read: needs {ARC_RUN} ({ARC_ROLE})"


def test_connected_machine_resource_administrator_runs_on_arc_only() -> None:
    admin = answer(CONNECTED_MACHINE_RESOURCE_ADMINISTRATOR)
    assert machine_verdict(arc("web-1"), admin).granted_by == ARC_RUN
    assert admin.allows("microsoft.hybridcompute/MACHINES/runcommands/DELETE")
    verdict = machine_verdict(vm("db-1"), admin)
    assert (verdict.access, verdict.missing, verdict.role) == (Access.NO_ACCESS,
                                                               VM_MANAGED_RUN, VM_ROLE)


def test_a_vm_with_only_the_action_permission_runs_by_the_action() -> None:
    only_action = answer({"actions": [VM_ACTION_RUN, "*/read"]})
    verdict = machine_verdict(vm("db-1"), only_action)
    assert (verdict.access, verdict.granted_by) == (Access.RUN, VM_ACTION_RUN)


def test_a_scale_set_instance_is_judged_by_the_scale_sets_own_actions() -> None:
    instance = Machine(f"{SUB}/resourceGroups/rg-a/providers/Microsoft.Compute/"
                       "virtualMachineScaleSets/queue-ss/virtualMachines/0", "queue-ss/0",
                       MachineKind.VM, OsType.LINUX)
    vms_only = answer({"actions": ["Microsoft.Compute/virtualMachines/*", "*/read"]})
    assert machine_verdict(vm("db-1"), vms_only).access is Access.RUN
    verdict = machine_verdict(instance, vms_only)
    assert (verdict.access, verdict.missing) == (Access.READ_ONLY, VMSS_MANAGED_RUN)
    action_only = answer({"actions": [VMSS_ACTION_RUN]})
    assert machine_verdict(instance, action_only).granted_by == VMSS_ACTION_RUN
    # Virtual Machine Contributor holds virtualMachineScaleSets/*: it runs there too.
    contributor = machine_verdict(instance, answer(VIRTUAL_MACHINE_CONTRIBUTOR))
    assert (contributor.access, contributor.granted_by) == (Access.RUN, VMSS_MANAGED_RUN)


@pytest.mark.parametrize(("pattern", "action", "matches"), [
    ("*", "Microsoft.HybridCompute/machines/runCommands/write", True),
    ("*/read", "Microsoft.HybridCompute/machines/runCommands/read", True),
    ("*/read", "Microsoft.HybridCompute/machines/runCommands/write", False),
    ("Microsoft.HybridCompute/machines/*", ARC_RUN, True),
    ("Microsoft.HybridCompute/machines/*", "Microsoft.HybridCompute/licenses/read", False),
    ("microsoft.hybridcompute/machines/RUNCOMMANDS/write", ARC_RUN, True),
    ("Microsoft.Compute/*/read", "Microsoft.Compute/virtualMachines/runCommands/read", True),
    ("Microsoft.Compute/virtualMachines/runCommands/write", VM_ACTION_RUN, False),
    ("Microsoft.Compute/virtualMachines/runCommand/action", VM_MANAGED_RUN, False),
    ("Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachines/read", False),
    ("Microsoft.Compute/virtualMachines/run?ommand/action", VM_ACTION_RUN, False),
])
def test_wildcards_match_as_arm_reads_them(pattern: str, action: str, matches: bool) -> None:
    assert action_matches(pattern, action) is matches


def test_not_actions_remove_an_action_from_their_own_entry() -> None:
    no_runs = answer({"actions": ["*"], "notActions": [ARC_RUN]})
    verdict = machine_verdict(arc("web-1"), no_runs)
    assert verdict.access is Access.READ_ONLY
    # Contributor's own notActions do not touch run commands.
    assert answer(CONTRIBUTOR).allows(ARC_RUN)
    assert not answer(CONTRIBUTOR).allows("Microsoft.Authorization/roleAssignments/write")


def test_one_entrys_not_actions_never_remove_another_entrys_action() -> None:
    both = answer({"actions": ["*"], "notActions": ["Microsoft.HybridCompute/*"]},
                  CONNECTED_MACHINE_RESOURCE_ADMINISTRATOR)
    assert both.allows(ARC_RUN)
    assert machine_verdict(arc("web-1"), both).access is Access.RUN


_ACTION_CHARACTERS = st.characters(codec="ascii", categories=["L", "N"]) | st.sampled_from("/.*")


@given(st.text(alphabet=_ACTION_CHARACTERS, max_size=30),
       st.sampled_from([ARC_RUN, ARC_READ, VM_MANAGED_RUN, VM_ACTION_RUN]))
def test_an_entry_never_allows_what_its_own_not_actions_name(pattern: str, action: str) -> None:
    entry = answer({"actions": ["*"], "notActions": [pattern]})
    assert entry.allows(action) is not action_matches(pattern, action)
    assert action_matches(pattern.swapcase(), action) is action_matches(pattern, action)


def test_data_actions_are_their_own_plane() -> None:
    login = answer({"actions": [],
                    "dataActions": ["Microsoft.Compute/virtualMachines/login/action"]})
    assert login.allows_data("microsoft.compute/virtualmachines/login/action")
    assert not login.allows("Microsoft.Compute/virtualMachines/login/action")


@pytest.mark.parametrize(("text", "named"), [
    ("<html>", "is not JSON"),
    ("[]", "'value' must be a list"),
    ('{"value": {}}', "'value' must be a list"),
    ('{"value": ["*"]}', "value[0] must be an object"),
    ('{"value": [{"actions": "*"}]}', "value[0].actions must be a list"),
    ('{"value": [{"actions": ["*"], "notActions": [3]}]}', "value[0].notActions must be"),
])
def test_a_bad_answer_names_the_field(text: str, named: str) -> None:
    with pytest.raises(BadPermissionsAnswer, match=named.replace("[", r"\[")) as caught:
        parse_permissions(text, SUB)
    assert SUB in str(caught.value)


def test_verdicts_use_the_most_specific_scope_answered_and_say_so_in_one_line() -> None:
    machines = [arc(f"web-{i}", "rg-ops") for i in range(3)] + [
        arc(f"app-{i}", "rg-app") for i in range(2)] + [vm("db-1", "rg-app")]
    ops_admin = answer(READER, CONNECTED_MACHINE_RESOURCE_ADMINISTRATOR)
    answers = {f"{SUB}/resourceGroups/RG-OPS": ops_admin, SUB.upper(): answer(READER)}
    verdicts = fleet_verdicts(machines, answers)
    assert [v.access for v in verdicts] == [Access.RUN] * 3 + [Access.READ_ONLY] * 3
    assert summary_line(verdicts) == (
        f"you can run on 3 of 6 machines; 2 need `{ARC_RUN}` ({ARC_ROLE}); "
        f"1 needs `{VM_MANAGED_RUN}` ({VM_ROLE})")


def test_machines_without_an_answer_are_not_checked_and_ssh_needs_none() -> None:
    ssh = Machine("ssh:host-1", "host-1", MachineKind.SSH, OsType.LINUX)
    verdicts = fleet_verdicts([arc("web-1"), ssh], {})
    assert [v.access for v in verdicts] == [Access.UNKNOWN, Access.RUN]
    assert summary_line(verdicts) == "you can run on 1 of 2 machines; 1 not checked"


def test_a_403_that_comes_anyway_names_the_action_scope_and_role() -> None:
    message = ("The client 'a@b.c' with object id '11111111-2222-3333-4444-555555555555' does "
               f"not have authorization to perform action '{ARC_RUN}' over scope "
               f"'{SUB}/resourceGroups/rg/providers/Microsoft.HybridCompute/machines/m/"
               "runCommands/x' or the scope is invalid. If access was recently granted, please "
               "refresh your credentials.")
    found = authorization_failure(message)
    assert found is not None and found[0] == ARC_RUN and found[1].endswith("runCommands/x")
    assert role_for(found[0]) == ARC_ROLE and role_for(VM_ACTION_RUN) == VM_ROLE
    assert authorization_failure("Conflict") is None


def test_the_permissions_path_asks_api_version_2022_04_01() -> None:
    assert permissions_path(SUB + "/") == (
        f"{SUB}/providers/Microsoft.Authorization/permissions?api-version=2022-04-01")
