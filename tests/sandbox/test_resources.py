"""The ARM and Resource Graph bodies of simulated machines: health fields, shapes, schema."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.sandbox.fleet import DEFAULT_TENANT, MachineSpec
from core.sandbox.graph import execute_query
from core.sandbox.graph_kql import RESOURCE_COLUMNS
from core.sandbox.machines import LINUX_HANDLER, VM_AGENT_VERSION, WINDOWS_HANDLER, SimMachine
from core.sandbox.resources import (
    ARC_AGENT_VERSION,
    arc_machine,
    graph_row,
    vm_instance_view,
    vm_resource,
)
from tests.sandbox.openapi import SPECS_DIR, spec_index

TENANT = "99999999-0000-4000-8000-000000000001"
WHEN = datetime(2025, 6, 1, 12, 30, 45, 123456, tzinfo=UTC)
MACHINES_GET = "hybridcompute/stable/2025-01-13/examples/machine/Machines_Get.json"
INSTANCE_VIEW = ("compute/ComputeRP/stable/2025-04-01/examples/virtualMachineExamples/"
                 "VirtualMachine_Get_InstanceView.json")


def _machine(tmp_path: Path, kind: str = "vm", os: str = "linux", name: str = "web-01", *,
             tags: dict[str, str] | None = None, agent: str = "ready", power: str = "running",
             status: str = "connected", agent_version: str = "") -> SimMachine:
    """A machine in sub-1/RG-Prod, its status last changed at ``WHEN``."""
    spec = MachineSpec(name=name, kind=kind, os=os, subscription="sub-1",
                       resource_group="RG-Prod", location="westeurope",
                       tags={"env": "prod"} if tags is None else tags, agent=agent, power=power,
                       status=status, agent_version=agent_version,
                       executor="process")  # never a pwsh stand-in: its tag differs by host
    machine = SimMachine(spec, root=tmp_path)
    machine.last_status_change = WHEN
    return machine


def _example(rel: str) -> Any:
    return json.loads((SPECS_DIR / rel).read_text())["responses"]["200"]["body"]


def _key_paths(node: Any, path: str = "") -> set[str]:
    """Every key path in a JSON value, with ``[]`` for any array index."""
    paths: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else key
            paths |= {sub} | _key_paths(value, sub)
    elif isinstance(node, list):
        for item in node:
            paths |= _key_paths(item, f"{path}[]")
    return paths


def _missing_paths(example: Any, ours: Any, leave_out: dict[str, str] | None = None) -> list[str]:
    """Key paths of ``example`` that ``ours`` lacks. A null in the example stands for any value
    (only its key must exist); ``leave_out`` maps deliberately absent paths (and so everything
    below them) to the reason."""
    skipped = tuple(leave_out or {})
    return sorted(p for p in _key_paths(example) - _key_paths(ours)
                  if not any(p == s or p.startswith((s + ".", s + "[")) for s in skipped))


def _without_nulls(node: Any) -> Any:
    """ARM's null is an absent property; Swagger 2.0 only allows null under x-nullable."""
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_without_nulls(item) for item in node]
    return node


def test_missing_paths_helper() -> None:
    example = {"a": {"b": 1, "c": None}, "d": None, "e": [{"f": 1}, {"g": 2}], "h": {"i": 1}}
    ours = {"a": {"b": None}, "e": [{"f": 1}], "h": {}}
    assert _missing_paths(example, ours) == ["a.c", "d", "e[].g", "h.i"]
    assert _missing_paths(example, ours, {"a.c": "", "e[]": "", "h": ""}) == ["d"]
    assert _missing_paths(example, copy.deepcopy(example)) == []


# ----------------------------------------------------------------------------- VM instance view


@pytest.mark.parametrize(("agent", "power", "agent_display", "power_display"), [
    ("ready", "running", "Ready", "VM running"),
    ("not-ready", "running", "Not Ready", "VM running"),
    ("ready", "stopped", None, "VM stopped"),
    ("ready", "deallocated", None, "VM deallocated"),
])
def test_vm_instance_view_health(tmp_path: Path, agent: str, power: str,
                                 agent_display: str | None, power_display: str) -> None:
    view = vm_instance_view(_machine(tmp_path, agent=agent, power=power))
    provisioning, power_state = view["statuses"]
    assert provisioning["code"] == "ProvisioningState/succeeded"
    assert power_state == {"code": f"PowerState/{power}", "level": "Info",
                           "displayStatus": power_display}
    assert ("vmAgent" in view) == (agent_display is not None)
    assert ("computerName" in view) == ("osName" in view) == (power != "deallocated")
    if agent_display is not None:
        status = view["vmAgent"]["statuses"][0]
        assert status["displayStatus"] == agent_display
        assert status["time"] == "2025-06-01T12:30:45.123456+00:00"
        assert datetime.fromisoformat(status["time"]) == WHEN


def test_vm_agent_statuses_as_azure_reports_them(tmp_path: Path) -> None:
    machine = _machine(tmp_path)
    agent = vm_instance_view(machine)["vmAgent"]
    assert agent["vmAgentVersion"] == VM_AGENT_VERSION
    assert agent["statuses"] == [{
        "code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Ready",
        "message": "GuestAgent is running and accepting new configurations.",
        "time": "2025-06-01T12:30:45.123456+00:00"}]
    machine.disconnect()  # the agent drops off mid-run: the view follows the machine's state
    agent = vm_instance_view(machine)["vmAgent"]
    assert agent["vmAgentVersion"] == "Unknown"
    status = agent["statuses"][0]
    assert {k: status[k] for k in ("code", "level", "displayStatus", "message")} == {
        "code": "ProvisioningState/Unavailable", "level": "Warning",
        "displayStatus": "Not Ready", "message": "VM Agent is unresponsive."}
    assert datetime.fromisoformat(status["time"]) == machine.last_status_change
    assert status["time"].endswith("+00:00")


@pytest.mark.parametrize(("os", "handler", "os_name"), [
    ("linux", LINUX_HANDLER, "ubuntu"),
    ("windows", WINDOWS_HANDLER, "Windows Server 2022 Datacenter"),
])
def test_run_commands_appear_as_handler_extensions(tmp_path: Path, os: str, handler: str,
                                                   os_name: str) -> None:
    machine = _machine(tmp_path, os=os)
    view = vm_instance_view(machine, run_command_names=["patch", "reboot-check"])
    assert view["osName"] == os_name
    assert [(e["name"], e["type"]) for e in view["extensions"]] == [
        ("patch", handler), ("reboot-check", handler)]
    assert [h["type"] for h in view["vmAgent"]["extensionHandlers"]] == [handler]
    bare = vm_instance_view(machine)
    assert "extensions" not in bare
    assert bare["vmAgent"]["extensionHandlers"] == []


def test_windows_computer_name_is_cut_to_15_characters(tmp_path: Path) -> None:
    machine = SimMachine(replace(_machine(tmp_path, os="windows").spec,
                                 name="win-application-01"), root=tmp_path)
    assert vm_instance_view(machine)["computerName"] == "win-application"
    assert vm_resource(machine, expand=None)["properties"]["osProfile"]["computerName"] == \
        "win-application"


# What the running VM's instance view deliberately leaves out of the example's shape.
VM_LEFT_OUT = {
    "bootDiagnostics": "boot diagnostics (screenshot, serial log blobs) are not simulated",
    "patchStatus": "patch assessment and installation are not simulated",
    "extensions[].statuses[].message": "the handler's message (the run's instanceView JSON) "
                                       "comes with handler_statuses, which this test omits; "
                                       "test_handler_status checks it over HTTP",
}


@pytest.mark.parametrize("os", ["linux", "windows"])
def test_vm_instance_view_has_the_example_shape(tmp_path: Path, os: str) -> None:
    view = vm_instance_view(_machine(tmp_path, os=os), run_command_names=["one"])
    example = _example(INSTANCE_VIEW)
    assert _missing_paths(example, view, VM_LEFT_OUT) == []
    assert all(_key_paths(example[key]) for key in VM_LEFT_OUT if "." not in key)


# ----------------------------------------------------------------------------- VM resource


@pytest.mark.parametrize(("os", "os_type", "config", "other"), [
    ("linux", "Linux", "linuxConfiguration", "windowsConfiguration"),
    ("windows", "Windows", "windowsConfiguration", "linuxConfiguration"),
])
def test_vm_resource(tmp_path: Path, os: str, os_type: str, config: str, other: str) -> None:
    machine = _machine(tmp_path, os=os)
    body = vm_resource(machine, expand=None)
    assert (body["id"], body["name"], body["type"], body["location"], body["tags"]) == (
        "/subscriptions/sub-1/resourceGroups/RG-Prod/providers/Microsoft.Compute/"
        "virtualMachines/web-01", "web-01", "Microsoft.Compute/virtualMachines", "westeurope",
        {"env": "prod"})
    props = body["properties"]
    assert props["vmId"] == machine.vm_id
    assert props["provisioningState"] == "Succeeded"
    assert props["hardwareProfile"]["vmSize"]
    disk = props["storageProfile"]["osDisk"]
    assert disk["osType"] == os_type
    assert disk["managedDisk"]["id"].endswith(f"/providers/Microsoft.Compute/disks/{disk['name']}")
    assert config in props["osProfile"] and other not in props["osProfile"]
    assert props["osProfile"]["secrets"] == []
    assert props["networkProfile"]["networkInterfaces"][0]["id"].startswith(
        "/subscriptions/sub-1/resourceGroups/RG-Prod/providers/Microsoft.Network/")
    assert datetime.fromisoformat(props["timeCreated"]).tzinfo is not None
    assert "instanceView" not in props


def test_vm_resource_expands_the_instance_view_only_when_asked(tmp_path: Path) -> None:
    machine = _machine(tmp_path, agent="not-ready")
    for expand in ("instanceView", "INSTANCEVIEW", "instanceview"):
        view = vm_resource(machine, expand=expand, run_command_names=["a"])["properties"][
            "instanceView"]
        assert view == vm_instance_view(machine, run_command_names=["a"])
        assert view["vmAgent"]["statuses"][0]["displayStatus"] == "Not Ready"
    for other in (None, "userData"):
        assert "instanceView" not in vm_resource(machine, expand=other)["properties"]


def test_bodies_are_deterministic(tmp_path: Path) -> None:
    one, two = _machine(tmp_path / "a"), _machine(tmp_path / "b")
    assert vm_resource(one, expand="instanceView", run_command_names=["x"]) == \
        vm_resource(two, expand="instanceView", run_command_names=["x"])
    arc_one, arc_two = _machine(tmp_path / "c", "arc"), _machine(tmp_path / "d", "arc")
    assert arc_machine(arc_one, expand="instanceView") == arc_machine(arc_two,
                                                                      expand="instanceView")
    other = SimMachine(replace(arc_one.spec, name="web-02"), root=tmp_path)
    assert arc_machine(other)["properties"]["vmUuid"] != arc_machine(arc_one)["properties"][
        "vmUuid"]


# ----------------------------------------------------------------------------- Arc machines


@pytest.mark.parametrize(("status", "reported", "service"), [
    ("connected", "Connected", "Running"),
    ("disconnected", "Disconnected", "Stopped"),
    ("error", "Error", "Running"),
    ("expired", "Expired", "Stopped"),
])
def test_arc_machine_health(tmp_path: Path, status: str, reported: str, service: str) -> None:
    props = arc_machine(_machine(tmp_path, "arc", status=status))["properties"]
    assert props["status"] == reported
    assert props["lastStatusChange"] == "2025-06-01T12:30:45.123456+00:00"
    assert props["agentVersion"] == ARC_AGENT_VERSION
    assert props["serviceStatuses"] == {
        "extensionService": {"status": service, "startupType": "Automatic"},
        "guestConfigurationService": {"status": service, "startupType": "Automatic"}}
    if status == "error":
        [error] = props["errorDetails"]
        assert error["code"] and error["message"]
    else:
        assert props["errorDetails"] == []


def test_arc_machine_reports_its_agent_version_and_status_changes(tmp_path: Path) -> None:
    old = _machine(tmp_path, "arc", agent_version="1.29.02286.0")
    assert not old.agent_supports_run_commands
    assert arc_machine(old)["properties"]["agentVersion"] == "1.29.02286.0"
    machine = _machine(tmp_path, "arc")
    machine.disconnect()
    props = arc_machine(machine)["properties"]
    assert props["status"] == "Disconnected"
    assert datetime.fromisoformat(props["lastStatusChange"]) == machine.last_status_change > WHEN


@pytest.mark.parametrize(("os", "config", "other"), [
    ("linux", "linuxConfiguration", "windowsConfiguration"),
    ("windows", "windowsConfiguration", "linuxConfiguration"),
])
def test_arc_machine_identity_and_os(tmp_path: Path, os: str, config: str, other: str) -> None:
    machine = _machine(tmp_path, "arc", os=os)
    body = arc_machine(machine, tenant_id=TENANT)
    assert (body["id"], body["type"], body["kind"], body["location"], body["tags"]) == (
        "/subscriptions/sub-1/resourceGroups/RG-Prod/providers/Microsoft.HybridCompute/"
        "machines/web-01", "Microsoft.HybridCompute/machines", None, "westeurope",
        {"env": "prod"})
    assert body["identity"]["type"] == "SystemAssigned"
    assert body["identity"]["tenantId"] == TENANT
    assert arc_machine(machine)["identity"]["tenantId"] == DEFAULT_TENANT
    props = body["properties"]
    assert props["osType"] == props["osName"] == os  # lowercase, as Arc reports them
    assert props["vmId"] == machine.vm_id
    assert props["displayName"] == "web-01" and props["machineFqdn"].startswith("web-01.")
    assert props["agentConfiguration"]["extensionsEnabled"] == "true"
    assert props["agentConfiguration"]["configMode"] == "full"
    assert props["cloudMetadata"] == {"provider": "N/A"}
    assert props["osProfile"][config]["patchSettings"]
    assert props["osProfile"][other] == {"patchSettings": {}}


def test_arc_expand_instance_view_adds_the_license_profile(tmp_path: Path) -> None:
    machine = _machine(tmp_path, "arc", os="windows")
    plain, expanded = arc_machine(machine), arc_machine(machine, expand="InstanceView")
    assert "licenseProfile" not in plain["properties"]
    assert expanded["properties"].pop("licenseProfile")["licenseStatus"] == "Licensed"
    assert expanded == plain


@pytest.mark.parametrize("status", ["connected", "disconnected", "error", "expired"])
@pytest.mark.parametrize("os", ["linux", "windows"])
@pytest.mark.parametrize("expand", [None, "instanceView"])
def test_arc_machine_matches_the_machine_schema(tmp_path: Path, status: str, os: str,
                                                expand: str | None) -> None:
    body = arc_machine(_machine(tmp_path, "arc", os=os, status=status), expand=expand)
    errors = spec_index().response_errors("Machines_Get", 200, _without_nulls(body))
    # Expired is documented (and shown by the portal) but not in the 2025-01-13 enum.
    assert errors == ([] if status != "expired" else [
        "$.properties.status: 'Expired' is not one of ['Connected', 'Disconnected', 'Error']"])
    # With the nulls kept, the only complaints are the nulls, as for the upstream example.
    raw_errors = spec_index().response_errors("Machines_Get", 200, body)
    assert all("None is not" in e or "'Expired'" in e for e in raw_errors), raw_errors


def test_schema_check_catches_a_wrong_type(tmp_path: Path) -> None:
    body = arc_machine(_machine(tmp_path, "arc"))
    body["properties"]["hardwareProfile"]["numberOfCpuSockets"] = "1"
    assert spec_index().response_errors("Machines_Get", 200, _without_nulls(body)) == [
        "$.properties.hardwareProfile.numberOfCpuSockets: '1' is not of type 'integer'"]


# Arc paths the example fills that the sandbox leaves empty, and why.
ARC_LEFT_OUT = {
    "properties.licenseProfile.esuProfile.esuKeys[]": "no ESU keys: the OS is not ESU-eligible",
    "properties.licenseProfile.productProfile.productFeatures[]":
        "not enrolled in any product feature (such as Hotpatch)",
}


@pytest.mark.parametrize(("os", "other_os"), [("linux", "windows"), ("windows", "linux")])
def test_arc_machine_has_the_example_shape(tmp_path: Path, os: str, other_os: str) -> None:
    body = arc_machine(_machine(tmp_path, "arc", os=os), expand="instanceView")
    left_out = {**ARC_LEFT_OUT,
                f"properties.osProfile.{other_os}Configuration.patchSettings":
                    "only the machine's own OS configuration is filled"}
    assert _missing_paths(_example(MACHINES_GET), body, left_out) == []


# ----------------------------------------------------------------------------- Resource Graph


def test_graph_row_columns(tmp_path: Path) -> None:
    for machine in (_machine(tmp_path), _machine(tmp_path, "arc")):
        row = graph_row(machine, tenant_id=TENANT)
        assert list(row) == list(RESOURCE_COLUMNS)
        assert row["tenantId"] == TENANT
        assert row["resourceGroup"] == "rg-prod"
        assert row["subscriptionId"] == "sub-1"
        assert row["id"] == machine.resource_id
        assert row["kind"] == row["managedBy"] == ""  # string columns are never null in ARG
        assert row["tags"] == {"env": "prod"}


@pytest.mark.parametrize(("os", "os_type"), [("linux", "Linux"), ("windows", "Windows")])
@pytest.mark.parametrize("power", ["running", "stopped", "deallocated"])
def test_graph_row_vm(tmp_path: Path, os: str, os_type: str, power: str) -> None:
    machine = _machine(tmp_path, os=os, agent="not-ready", power=power)
    row = graph_row(machine, tenant_id=TENANT)
    props = row["properties"]
    assert row["type"] == "microsoft.compute/virtualmachines"
    assert row["identity"] is None
    extended = props["extended"]["instanceView"]
    assert extended["powerState"] == {"code": f"PowerState/{power}", "level": "Info",
                                      "displayStatus": f"VM {power}"}
    assert props["storageProfile"]["osDisk"]["osType"] == os_type
    assert props["hardwareProfile"]["vmSize"]
    assert "instanceView" not in props
    assert "vmAgent" not in json.dumps(row)  # agent readiness is not in Resource Graph
    expected = {"powerState", "hyperVGeneration"}
    if power != "deallocated":
        expected |= {"computerName", "osName", "osVersion"}
    assert set(extended) == expected


def test_graph_row_arc(tmp_path: Path) -> None:
    machine = _machine(tmp_path, "arc", os="windows", status="error",
                       agent_version="1.29.02286.0")
    row = graph_row(machine, tenant_id=TENANT)
    props = row["properties"]
    assert row["type"] == "microsoft.hybridcompute/machines"
    assert row["identity"]["tenantId"] == TENANT
    assert (props["status"], props["agentVersion"], props["osType"], props["osName"]) == (
        "Error", "1.29.02286.0", "windows", "windows")
    assert props["lastStatusChange"] == "2025-06-01T12:30:45.123456+00:00"
    assert props == arc_machine(machine, tenant_id=TENANT)["properties"]


def test_reference_queries_read_health_and_os(tmp_path: Path) -> None:
    """The union query from reference section 6.5 sees each machine's state and OS."""
    machines = [_machine(tmp_path, "arc", os="windows", name="arc-01", status="expired"),
                _machine(tmp_path, os="linux", power="deallocated"),
                _machine(tmp_path, name="other", tags={"env": "dev"})]
    rows = [graph_row(m, tenant_id=TENANT) for m in machines]
    query = """Resources
| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.hybridcompute/machines')
| extend machineKind = iff(type =~ 'microsoft.compute/virtualmachines', 'vm', 'arc'),
         os = tolower(coalesce(tostring(properties.storageProfile.osDisk.osType),
                               tostring(properties.osType))),
         state = coalesce(tostring(properties.extended.instanceView.powerState.code),
                          tostring(properties.status))
| where tags['env'] =~ 'prod'
| project id, machineKind, os, state, resourceGroup
| order by id asc"""
    result = execute_query({"query": query, "options": {"resultFormat": "objectArray"}}, rows)
    assert result["data"] == [
        {"id": machines[1].resource_id, "machineKind": "vm", "os": "linux",
         "state": "PowerState/deallocated", "resourceGroup": "rg-prod"},
        {"id": machines[0].resource_id, "machineKind": "arc", "os": "windows",
         "state": "Expired", "resourceGroup": "rg-prod"},
    ]
