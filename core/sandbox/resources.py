"""The sandbox's machines as the JSON Azure returns for them: VM, VM instance view, Arc machine
and Resource Graph row.

Pure functions of a ``SimMachine``: every value is fixed or derived from the machine (its name,
ids and OS), and the only time that moves is ``last_status_change``, so equal machines give equal
bodies. Health is where the real services put it: the VM agent's readiness only in the instance
view (``vmAgent.statuses``), the VM power state in the instance view and in Resource Graph's
``properties.extended.instanceView.powerState``, the Arc agent's ``status``, ``agentVersion`` and
``lastStatusChange`` directly in the machine's ``properties``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.sandbox.fleet import DEFAULT_TENANT
from core.sandbox.machines import LINUX_HANDLER, VM_AGENT_VERSION, WINDOWS_HANDLER, SimMachine

Json = dict[str, Any]

CREATED = datetime(2024, 3, 4, 9, 15, 27, 481516, tzinfo=UTC)
"""When every simulated machine was created or onboarded (fixed, so bodies are deterministic)."""
ARC_AGENT_VERSION = "1.45.02800.0"
"""The Connected Machine agent an Arc machine reports when its spec names no version."""
VM_SIZE = "Standard_D2s_v5"
ARC_STATUS = {"connected": "Connected", "disconnected": "Disconnected", "error": "Error",
              "expired": "Expired"}
"""``Expired`` is not in the 2025-01-13 ``StatusTypes`` enum but is modelAsString (ref. 5.1)."""
DNS_SUFFIX = "fleetrun.internal"
SUCCEEDED = "ProvisioningState/succeeded"
_AGENT_READY = (SUCCEEDED, "Ready", "Info",
                "GuestAgent is running and accepting new configurations.")
_AGENT_NOT_READY = ("ProvisioningState/Unavailable", "Not Ready", "Warning",
                    "VM Agent is unresponsive.")


@dataclass(frozen=True, slots=True)
class _OsFacts:
    handler: Json  # the managed run-command handler: type and typeHandlerVersion
    vm_os_name: str  # what the VM guest agent reports (instance view osName/osVersion)
    vm_os_version: str
    image: Json
    disk_gb: int
    arc_os_version: str  # the Connected Machine agent: kernel on Linux, build on Windows
    arc_sku: str
    arc_edition: str | None
    nic: str
    volume: tuple[str, str]  # Arc storageProfile disk path and name


_OS = {
    "linux": _OsFacts(
        {"type": LINUX_HANDLER, "typeHandlerVersion": "1.3.28"}, "ubuntu", "22.04",
        {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
         "sku": "22_04-lts-gen2", "version": "latest", "exactVersion": "22.04.202404090"},
        30, "5.15.0-105-generic", "Ubuntu 22.04.4 LTS", None, "eth0", ("/", "sda1")),
    "windows": _OsFacts(
        {"type": WINDOWS_HANDLER, "typeHandlerVersion": "2.0.5"},
        "Windows Server 2022 Datacenter", "Microsoft Windows NT 10.0.20348.0",
        {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
         "sku": "2022-datacenter-g2", "version": "latest", "exactVersion": "20348.2402.240405"},
        127, "10.0.20348.2402", "Windows Server 2022 Datacenter", "serverdatacenter", "Ethernet",
        ("C:\\", "Windows")),
}


def _iso(moment: datetime) -> str:
    """ARM's timestamp form: ISO 8601 with a ``+00:00`` offset."""
    return moment.astimezone(UTC).isoformat()


def _status(code: str, display: str, level: str = "Info", **extra: str) -> Json:
    return {"code": code, "level": level, "displayStatus": display, **extra}


def _uuid(machine: SimMachine, purpose: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{machine.resource_id.lower()}#{purpose}"))


def _computer_name(machine: SimMachine) -> str:
    return machine.computer_name


def _os_disk_name(machine: SimMachine) -> str:
    return f"{machine.name}_OsDisk_1_{machine.vm_id.replace('-', '')}"


def _sibling_id(machine: SimMachine, resource_type: str, name: str) -> str:
    """The id of another resource in the machine's resource group."""
    spec = machine.spec
    return (f"/subscriptions/{spec.subscription}/resourceGroups/{spec.resource_group}"
            f"/providers/{resource_type}/{name}")


# ----------------------------------------------------------------------------- Azure VMs


def vm_instance_view(machine: SimMachine, *, run_command_names: Sequence[str] = (),
                     handler_statuses: Mapping[str, Json] | None = None) -> Json:
    """The body of ``GET .../virtualMachines/{vm}/instanceView``.

    ``handler_statuses`` gives a run command's extension status by name (see
    ``handler_status``); a name without one reports ``ProvisioningState/succeeded``.

    A stopped or deallocated VM has no ``vmAgent`` (nor run-command ``extensions``): nothing runs
    in the guest to report them. A deallocated one also has no ``computerName``/``osName``/
    ``osVersion``. ``bootDiagnostics`` and ``patchStatus`` are not simulated.
    """
    facts = _OS[machine.spec.os]
    running = machine.power == "running"
    view: Json = {"platformUpdateDomain": 0, "platformFaultDomain": 0}
    if machine.power != "deallocated":
        view |= {"computerName": _computer_name(machine), "osName": facts.vm_os_name,
                 "osVersion": facts.vm_os_version}
    if running:
        code, display, level, message = _AGENT_READY if machine.agent_ready else _AGENT_NOT_READY
        view["vmAgent"] = {
            "vmAgentVersion": (machine.spec.agent_version or VM_AGENT_VERSION)
            if machine.agent_ready else "Unknown",
            "statuses": [_status(code, display, level, message=message,
                                 time=_iso(machine.last_status_change))],
            "extensionHandlers": [{**facts.handler, "status": _status(SUCCEEDED, "Ready")}]
            if run_command_names else [],
        }
    view["disks"] = [{"name": _os_disk_name(machine), "statuses": [
        _status(SUCCEEDED, "Provisioning succeeded", time=_iso(CREATED))]}]
    if running and run_command_names:
        statuses = handler_statuses or {}
        view["extensions"] = [
            {"name": name, **facts.handler,
             "statuses": [statuses.get(name) or _status(SUCCEEDED, "Provisioning succeeded")]}
            for name in run_command_names
        ]
    view["hyperVGeneration"] = "V2"
    view["isVMInStandbyPool"] = False
    view["statuses"] = [
        _status(SUCCEEDED, "Provisioning succeeded", time=_iso(CREATED)),
        _status(f"PowerState/{machine.power}", f"VM {machine.power}"),
    ]
    return view


def _vm_properties(machine: SimMachine) -> Json:
    facts = _OS[machine.spec.os]
    disk = _os_disk_name(machine)
    if machine.windows:
        os_config: Json = {"windowsConfiguration": {
            "provisionVMAgent": True, "enableAutomaticUpdates": True,
            "patchSettings": {"patchMode": "AutomaticByOS", "assessmentMode": "ImageDefault",
                              "enableHotpatching": False}}}
    else:
        os_config = {"linuxConfiguration": {
            "disablePasswordAuthentication": True, "provisionVMAgent": True,
            "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"}}}
    return {
        "vmId": machine.vm_id,
        "hardwareProfile": {"vmSize": VM_SIZE},
        "storageProfile": {
            "imageReference": dict(facts.image),
            "osDisk": {
                "osType": "Windows" if machine.windows else "Linux",
                "name": disk,
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {"storageAccountType": "Premium_LRS",
                                "id": _sibling_id(machine, "Microsoft.Compute/disks", disk)},
                "deleteOption": "Delete",
                "diskSizeGB": facts.disk_gb,
            },
            "dataDisks": [],
        },
        "osProfile": {
            "computerName": _computer_name(machine),
            "adminUsername": "azureuser",
            **os_config,
            "secrets": [],
            "allowExtensionOperations": True,
            "requireGuestProvisionSignal": True,
        },
        "networkProfile": {"networkInterfaces": [{"id": _sibling_id(
            machine, "Microsoft.Network/networkInterfaces", f"{machine.name}-nic")}]},
        "provisioningState": "Succeeded",
        "timeCreated": _iso(CREATED),
        # A Flexible scale set's member says which set it is in (reference 6.2).
        **({"virtualMachineScaleSet": {"id": machine.scale_set_id}}
           if machine.scale_set_id else {}),
    }


def vm_resource(machine: SimMachine, *, expand: str | None,
                run_command_names: Sequence[str] = (),
                handler_statuses: Mapping[str, Json] | None = None) -> Json:
    """The body of ``GET .../virtualMachines/{vm}``; ``properties.instanceView`` only with
    ``$expand=instanceView`` (any case), as Compute does."""
    body: Json = {
        "name": machine.name,
        "id": machine.resource_id,
        "type": "Microsoft.Compute/virtualMachines",
        "location": machine.spec.location,
        "tags": dict(machine.spec.tags),
        "properties": _vm_properties(machine),
    }
    if expand is not None and expand.lower() == "instanceview":
        body["properties"]["instanceView"] = vm_instance_view(
            machine, run_command_names=run_command_names, handler_statuses=handler_statuses)
    return body


# ----------------------------------------------------------------------------- Arc machines


def _arc_license_profile(machine: SimMachine) -> Json:
    """The license instance view; Windows Server 2022 is neither ESU-eligible nor enrolled."""
    windows = machine.windows
    undated = dict.fromkeys(
        ("enrollmentDate", "billingStartDate", "disenrollmentDate", "billingEndDate"))
    return {
        "licenseStatus": "Licensed" if windows else None,
        "licenseChannel": "Volume:GVLK" if windows else None,
        "softwareAssurance": {"softwareAssuranceCustomer": False},
        "esuProfile": {"licenseAssignmentState": "NotAssigned", "esuEligibility": "Ineligible",
                       "serverType": "Datacenter" if windows else None,
                       "esuKeyState": "Inactive", "esuKeys": []},
        "productProfile": {"subscriptionStatus": "Unknown",
                           "productType": "WindowsServer" if windows else None,
                           **undated, "productFeatures": []},
    }


def _agent_configuration(machine: SimMachine) -> Json:
    """What the agent's local ``azcmagent config`` settings are, as ``Machines_Get`` reports
    them: lists of ``{publisher, type}``, ``extensionsEnabled`` as the string "true"/"false"."""
    spec = machine.spec

    def extensions(names: Sequence[str]) -> list[Json]:
        return [{"publisher": publisher, "type": kind}
                for publisher, _, kind in (name.partition("/") for name in names)]

    return {"proxyUrl": None, "incomingConnectionsPorts": [],
            "extensionsAllowList": extensions(spec.extensions_allowlist),
            "extensionsBlockList": extensions(spec.extensions_blocklist),
            "proxyBypass": [], "extensionsEnabled": "true" if spec.extensions_enabled else "false",
            "guestConfigurationEnabled": "true", "configMode": spec.config_mode}


def arc_machine(machine: SimMachine, *, expand: str | None = None,
                tenant_id: str = DEFAULT_TENANT) -> Json:
    """The body of ``Machines_Get`` (HybridCompute 2025-01-13), shaped like its example.

    ``$expand=instanceView`` (any case) adds ``properties.licenseProfile``, the license instance
    view. Keys the example has but the sandbox has nothing for are null, as in the example.
    """
    facts = _OS[machine.spec.os]
    status = machine.arc_status
    service = {"status": "Stopped" if status in ("disconnected", "expired") else "Running",
               "startupType": "Automatic"}
    errors = [{"code": "AgentError", "message": "The Connected Machine agent reported an "
               "error; run 'azcmagent show' on the machine for details."}]
    raw = uuid.UUID(machine.vm_id).bytes
    fqdn = f"{machine.name.lower()}.{DNS_SUFFIX}"
    patch: Json = {"assessmentMode": "ImageDefault", "patchMode": "ImageDefault"}
    if machine.windows:
        os_configs: Json = {
            "windowsConfiguration": {"patchSettings": {
                **patch, "enableHotpatching": False,
                "status": {"hotpatchEnablementStatus": "Unknown", "error": None}}},
            "linuxConfiguration": {"patchSettings": {}}}
    else:
        os_configs = {"windowsConfiguration": {"patchSettings": {}},
                      "linuxConfiguration": {"patchSettings": patch}}
    properties: Json = {
        "provisioningState": "Succeeded",
        "agentVersion": machine.spec.agent_version or ARC_AGENT_VERSION,
        "status": ARC_STATUS[status],
        "lastStatusChange": _iso(machine.last_status_change),
        "errorDetails": errors if status == "error" else [],
        "displayName": machine.name,
        "machineFqdn": fqdn,
        "vmUuid": _uuid(machine, "smbios").upper(),
        "osSku": facts.arc_sku,
        "osEdition": facts.arc_edition,
        "domainName": "WORKGROUP" if machine.windows else None,
        "adFqdn": None,
        "dnsFqdn": fqdn,
        "osName": machine.spec.os,  # the agent reports "linux" / "windows" here, as for osType
        "osVersion": facts.arc_os_version,
        "osType": machine.spec.os,
        "osProfile": {"computerName": machine.name, **os_configs},
        "vmId": machine.vm_id,
        "locationData": {"name": machine.spec.location, "city": None, "district": None,
                         "countryOrRegion": None},
        "clientPublicKey": base64.b64encode(
            hashlib.sha256(f"fleetrun-sandbox:{machine.vm_id}".encode()).digest()).decode(),
        "parentClusterResourceId": None,
        "mssqlDiscovered": "false",
        "detectedProperties": {"cloudprovider": "N/A", "manufacturer": "Microsoft Corporation",
                               "model": "Virtual Machine", "coreCount": "4",
                               "logicalCoreCount": "4", "processorCount": "1",
                               "totalPhysicalMemoryInGigabytes": "16", "mssqldiscovered": "false"},
        "agentConfiguration": _agent_configuration(machine),
        "serviceStatuses": {"extensionService": dict(service),
                            "guestConfigurationService": dict(service)},
        "cloudMetadata": {"provider": "N/A"},
        "firmwareProfile": {"serialNumber": _uuid(machine, "firmware"), "type": "UEFI"},
        "hardwareProfile": {"totalPhysicalMemoryInBytes": 16 * 2**30, "numberOfCpuSockets": 1,
                            "processors": [{"name": "Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz",
                                            "numberOfCores": 4}]},
        "storageProfile": {"disks": [{
            "path": facts.volume[0], "diskType": "Fixed", "generatedId": _uuid(machine, "disk"),
            "id": "0", "name": facts.volume[1], "maxSizeInBytes": 127 * 2**30,
            "usedSpaceInBytes": 24 * 2**30}]},
        "privateLinkScopeResourceId": None,
        "networkProfile": {"networkInterfaces": [{
            "name": facts.nic,
            "macAddress": "00:15:5d:" + ":".join(f"{b:02x}" for b in raw[3:6]),  # Hyper-V OUI
            "id": "2",
            "ipAddresses": [{"address": f"10.{raw[0]}.{raw[1]}.{4 + raw[2] % 250}",
                             "ipAddressVersion": "IPv4",
                             "subnet": {"addressPrefix": f"10.{raw[0]}.{raw[1]}.0/24"}}]}]},
    }
    if expand is not None and expand.lower() == "instanceview":
        properties["licenseProfile"] = _arc_license_profile(machine)
    return {
        "id": machine.resource_id,
        "name": machine.name,
        "location": machine.spec.location,
        "tags": dict(machine.spec.tags),
        "identity": {"type": "SystemAssigned", "principalId": _uuid(machine, "identity"),
                     "tenantId": tenant_id},
        "type": "Microsoft.HybridCompute/machines",
        "kind": None,
        "properties": properties,
        "resources": [],
    }


# ----------------------------------------------------------------------------- Resource Graph


def graph_row(machine: SimMachine, *, tenant_id: str) -> Json:
    """The machine as a row of Resource Graph's ``Resources`` table.

    A VM's ``properties`` are the VM's (without ``instanceView``) plus ARG's
    ``extended.instanceView``: power state and OS facts, never the VM agent's readiness. An Arc
    machine's are the machine's. ``type`` and ``resourceGroup`` are lowercase, string columns
    without a value are ``""`` and object columns null, as ARG reports them.
    """
    identity: Json | None = None
    if machine.is_vm:
        properties = _vm_properties(machine)
        view = vm_instance_view(machine)
        extended = {key: view[key] for key in ("computerName", "osName", "osVersion",
                                               "hyperVGeneration") if key in view}
        power = next(s for s in view["statuses"] if s["code"].startswith("PowerState/"))
        properties["extended"] = {"instanceView": {**extended, "powerState": power}}
        resource_type = "microsoft.compute/virtualmachines"
    else:
        body = arc_machine(machine, tenant_id=tenant_id)
        properties, identity = body["properties"], body["identity"]
        resource_type = "microsoft.hybridcompute/machines"
    spec = machine.spec
    return {
        "id": machine.resource_id,
        "name": machine.name,
        "type": resource_type,
        "tenantId": tenant_id,
        "kind": "",
        "location": spec.location,
        "resourceGroup": spec.resource_group.lower(),
        "subscriptionId": spec.subscription,
        "managedBy": "",
        "sku": None,
        "plan": None,
        "properties": properties,
        "tags": dict(spec.tags),
        "identity": identity,
        "zones": None,
        "extendedLocation": None,
    }
