"""VM scale sets as Azure returns them: a Uniform instance, its instance view, its row in
Resource Graph's ``computeresources`` table, and the scale set's own ``resources`` row.

Written from azure-storage-and-scale-sets.md section 6: a Uniform instance is the child
resource ``virtualMachineScaleSets/{set}/virtualMachines/{instance id}`` (a decimal id), listed
by Resource Graph in ``computeresources``, never in ``resources``; a Flexible member is an
ordinary VM (``resources.vm_resource``) with ``properties.virtualMachineScaleSet.id``; a scale
set's ``properties.orchestrationMode`` says which kind it is. Pure functions, as ``resources``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.sandbox.fleet import ScaleSetSpec
from core.sandbox.machines import SimMachine
from core.sandbox.resources import VM_SIZE, graph_row, vm_resource
from core.sandbox.resources import vm_instance_view as _vm_instance_view

Json = dict[str, Any]

INSTANCE_TYPE = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
SCALE_SET_TYPE = "Microsoft.Compute/virtualMachineScaleSets"


def instance_view(machine: SimMachine, *, run_command_names: Sequence[str] = (),
                  handler_statuses: Mapping[str, Json] | None = None) -> Json:
    """The body of ``GET .../virtualMachineScaleSets/{set}/virtualMachines/{id}/instanceView``
    (``VirtualMachineScaleSetVMInstanceView``): a VM's instance view without the VM-only
    ``isVMInStandbyPool``, with the instance's ``placementGroupId``."""
    view = _vm_instance_view(machine, run_command_names=run_command_names,
                             handler_statuses=handler_statuses)
    view.pop("isVMInStandbyPool", None)
    view["placementGroupId"] = machine.vm_id
    return view


def instance_resource(machine: SimMachine, *, expand: str | None,
                      run_command_names: Sequence[str] = (),
                      handler_statuses: Mapping[str, Json] | None = None) -> Json:
    """The body of ``GET .../virtualMachineScaleSets/{set}/virtualMachines/{id}``
    (``VirtualMachineScaleSetVM``); ``properties.instanceView`` only with
    ``$expand=instanceView``."""
    body = vm_resource(machine, expand=None)
    properties = body["properties"]
    properties.pop("virtualMachineScaleSet", None)
    properties["latestModelApplied"] = True
    properties["modelDefinitionApplied"] = "VirtualMachineScaleSet"
    properties["protectionPolicy"] = {"protectFromScaleIn": False,
                                      "protectFromScaleSetActions": False}
    if expand is not None and expand.lower() == "instanceview":
        properties["instanceView"] = instance_view(
            machine, run_command_names=run_command_names, handler_statuses=handler_statuses)
    return {
        "name": machine.name,
        "id": machine.resource_id,
        "type": INSTANCE_TYPE,
        "instanceId": machine.spec.instance_id,
        "location": machine.spec.location,
        "tags": dict(machine.spec.tags),
        "sku": {"name": VM_SIZE, "tier": "Standard"},
        "properties": properties,
    }


def compute_resources_row(machine: SimMachine, *, tenant_id: str) -> Json:
    """A Uniform instance as a row of Resource Graph's ``computeresources`` table: the model
    view plus the power state at ``properties.extended.instanceView.powerState`` (6.1)."""
    row = graph_row(machine, tenant_id=tenant_id)
    row["type"] = INSTANCE_TYPE.lower()
    row["sku"] = {"name": VM_SIZE, "tier": "Standard"}
    row["properties"].pop("virtualMachineScaleSet", None)
    row["properties"]["latestModelApplied"] = True
    return row


def scale_set_row(scale_set: ScaleSetSpec, *, tenant_id: str) -> Json:
    """A scale set as a row of Resource Graph's ``resources`` table (6.2)."""
    resource_id = (f"/subscriptions/{scale_set.subscription}/resourceGroups/"
                   f"{scale_set.resource_group}/providers/{SCALE_SET_TYPE}/{scale_set.name}")
    return {
        "id": resource_id,
        "name": scale_set.name,
        "type": SCALE_SET_TYPE.lower(),
        "tenantId": tenant_id,
        "kind": "",
        "location": scale_set.location,
        "resourceGroup": scale_set.resource_group.lower(),
        "subscriptionId": scale_set.subscription,
        "managedBy": "",
        "sku": {"name": VM_SIZE, "tier": "Standard", "capacity": scale_set.capacity},
        "plan": None,
        "properties": {"orchestrationMode": scale_set.orchestration,
                       "provisioningState": "Succeeded",
                       "platformFaultDomainCount": 1,
                       "storageProfile": {"osDisk": {
                           "osType": "Windows" if scale_set.os == "windows" else "Linux"}}},
        "tags": dict(scale_set.tags),
        "identity": None,
        "zones": None,
        "extendedLocation": None,
    }
