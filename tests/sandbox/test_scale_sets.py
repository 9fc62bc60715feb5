"""VM scale sets in the sandbox: Uniform instances under their set, Flexible members as VMs.

Spoken to over plain HTTP as an ARM client would (azure-storage-and-scale-sets.md section 6):
Resource Graph lists Uniform instances in ``computeresources`` and Flexible members (and the
sets) in ``resources``; an instance answers GET, its instance view, managed run commands and
the action POST; a non-numeric instance id is a 400. Bodies are checked against the spec.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from core.sandbox.fleet import FleetFileError, FleetSpec, parse_fleet
from tests.sandbox.arm_client import COMPUTE, RG, SUB, Api, sandbox_api
from tests.sandbox.openapi import spec_index

GRAPH = "/providers/Microsoft.ResourceGraph/resources"
SETS = (f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute"
        "/virtualMachineScaleSets")


def _fleet(**scale_set: Any) -> FleetSpec:
    defaults = {"subscription": SUB, "resource_group": RG, "location": "westeurope"}
    return parse_fleet({
        "sandbox": {"flush_interval": 0.1, "pickup_delay": 0, "agent_timeout": 1},
        "defaults": defaults,
        "machines": [{"name": "plain-vm", "kind": "vm", "os": "linux"}],
        "scale_sets": [
            {"name": "uni", "orchestration": "Uniform", "count": 2, "os": "linux",
             "tags": {"role": "queue"}, **scale_set},
            {"name": "flex", "orchestration": "Flexible", "count": 2, "os": "linux"},
        ],
    })


def _instance(n: int | str, scale_set: str = "uni") -> str:
    return f"{SETS}/{scale_set}/virtualMachines/{n}"


async def _graph(api: Api, query: str) -> list[dict[str, Any]]:
    answer = await api.client.post(GRAPH, params={"api-version": "2024-04-01"},
                                   json={"query": query})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()["data"]
    return rows


async def test_resource_graph_lists_uniform_instances_and_flexible_members(
        tmp_path: Path) -> None:
    async with sandbox_api(_fleet(), tmp_path) as api:
        uniform = await _graph(api, (
            "computeresources | where type =~ "
            "'microsoft.compute/virtualmachinescalesets/virtualmachines' "
            "| extend parts = split(id, '/') | project id, scaleSet = tostring(parts[8]), "
            "instance = tostring(parts[10]), "
            "power = tostring(properties.extended.instanceView.powerState.code), "
            "osType = tostring(properties.storageProfile.osDisk.osType), tags "
            "| order by id asc"))
        flexible = await _graph(api, (
            "resources | where type =~ 'microsoft.compute/virtualmachines' and "
            "isnotempty(properties.virtualMachineScaleSet.id) "
            "| project name, ss = tostring(properties.virtualMachineScaleSet.id)"))
        sets = await _graph(api, (
            "resources | where type =~ 'microsoft.compute/virtualmachinescalesets' "
            "| project name, mode = tostring(properties.orchestrationMode) | order by name asc"))
        plain = await _graph(api, "resources | where type =~ "
                             "'microsoft.compute/virtualmachines' | project name")
    assert [(r["scaleSet"], r["instance"], r["power"], r["osType"]) for r in uniform] == [
        ("uni", "0", "PowerState/running", "Linux"), ("uni", "1", "PowerState/running", "Linux")]
    assert uniform[0]["id"] == _instance(0)
    assert uniform[0]["tags"] == {"role": "queue"}
    assert len(flexible) == 2
    assert all(r["name"].startswith("flex_") and r["ss"] == f"{SETS}/flex" for r in flexible)
    assert sets == [{"name": "flex", "mode": "Flexible"}, {"name": "uni", "mode": "Uniform"}]
    # Uniform instances are not VMs of the resource group: resources never lists them.
    assert sorted(r["name"] for r in plain) == sorted(["plain-vm", *(r["name"] for r in flexible)])


# azure-storage-and-scale-sets.md 6.3: both kinds with their scale set, in one query.
BOTH_KINDS = """resources
| where type =~ 'microsoft.compute/virtualmachines'
    and isnotempty(properties.virtualMachineScaleSet.id)
| extend ssId = tolower(tostring(properties.virtualMachineScaleSet.id))
| project id, mode = 'Flexible', scaleSet = tostring(split(ssId, '/')[8]), instance = name,
          osType = tostring(properties.storageProfile.osDisk.osType),
          power = tostring(properties.extended.instanceView.powerState.code), subscriptionId
| union (
    computeresources
    | where type =~ 'microsoft.compute/virtualmachinescalesets/virtualmachines'
    | extend parts = split(id, '/')
    | project id, mode = 'Uniform', scaleSet = tostring(parts[8]), instance = tostring(parts[10]),
              osType = tostring(properties.storageProfile.osDisk.osType),
              power = tostring(properties.extended.instanceView.powerState.code), subscriptionId)
| order by id asc"""


async def test_one_union_query_lists_both_kinds(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(), tmp_path) as api:
        rows = await _graph(api, BOTH_KINDS)
    # Ordered by id: .../virtualMachineScaleSets/uni/... sorts before .../virtualMachines/...
    assert [(r["mode"], r["scaleSet"], r["osType"]) for r in rows] == [
        ("Uniform", "uni", "Linux"), ("Uniform", "uni", "Linux"),
        ("Flexible", "flex", "Linux"), ("Flexible", "flex", "Linux")]
    assert [r["instance"] for r in rows[:2]] == ["0", "1"]


async def test_an_instance_answers_get_and_its_instance_view(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(), tmp_path) as api:
        got = await api.client.get(_instance(1), params={"api-version": COMPUTE,
                                                         "$expand": "instanceView"})
        view = await api.client.get(f"{_instance(1)}/instanceView",
                                    params={"api-version": COMPUTE})
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["instanceId"] == "1" and body["id"] == _instance(1)
    assert body["name"] == "uni_1"
    assert body["properties"]["osProfile"]["computerName"] == "uni000001"
    assert view.status_code == 200, view.text
    statuses = {s["code"] for s in view.json()["statuses"]}
    assert "PowerState/running" in statuses
    assert view.json()["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"


async def test_a_non_numeric_instance_id_is_refused(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(), tmp_path) as api:
        flexible = next(m.name for m in api.service.all_machines()
                        if m.spec.orchestration == "Flexible")
        for path in (_instance(flexible, "flex"), f"{_instance('x1')}/runCommands/one"):
            answer = await api.client.get(path, params={"api-version": COMPUTE})
            assert answer.status_code == 400, answer.text
            assert answer.json()["error"] == {
                "code": "InvalidParameter",
                "message": "Virtual Machine Scale Set VM instanceId must be a number."}
        missing = await api.client.get(_instance(7), params={"api-version": COMPUTE})
    assert missing.status_code == 404


async def test_managed_run_commands_on_an_instance(tmp_path: Path) -> None:
    spec = spec_index()
    async with sandbox_api(_fleet(), tmp_path) as api:
        put = await api.put(_instance(0), "hello", {"source": {"script": "echo $HOSTNAME"}})
        assert put.status_code == 201, put.text
        spec.validate_response("VirtualMachineScaleSetVMRunCommands_CreateOrUpdate", 201,
                               put.json())
        done = await api.wait_for(_instance(0), "hello")
        spec.validate_response("VirtualMachineScaleSetVMRunCommands_Get", 200, done)
        assert done["id"] == f"{_instance(0)}/runCommands/hello"
        assert done["type"] == ("Microsoft.Compute/virtualMachineScaleSets/virtualMachines/"
                                "runCommands")
        assert done["properties"]["instanceView"]["executionState"] == "Succeeded"
        assert done["properties"]["instanceView"]["output"].strip() == "uni000000"
        listed = await api.client.get(f"{_instance(0)}/runCommands",
                                      params={"api-version": COMPUTE})
        spec.validate_response("VirtualMachineScaleSetVMRunCommands_List", 200, listed.json())
        assert [c["name"] for c in listed.json()["value"]] == ["hello"]
        # The other instance has none: run commands belong to one instance.
        other = await api.client.get(f"{_instance(1)}/runCommands",
                                     params={"api-version": COMPUTE})
        assert other.json()["value"] == []
        patched = await api.client.patch(f"{_instance(0)}/runCommands/hello",
                                         params={"api-version": COMPUTE},
                                         json={"properties": {"timeoutInSeconds": 60}})
        assert patched.status_code == 200, patched.text
        spec.validate_response("VirtualMachineScaleSetVMRunCommands_Update", 200, patched.json())
        deleted = await api.delete(_instance(0), "hello")
        assert deleted.status_code in (200, 202, 204)
        deadline = time.monotonic() + 15
        while (await api.get(_instance(0), "hello")).status_code != 404:
            assert time.monotonic() < deadline, "the run command was not deleted"
            await asyncio.sleep(0.05)


async def test_the_action_api_on_an_instance(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(), tmp_path) as api:
        accepted = await api.client.post(
            f"{SETS}/uni/virtualmachines/1/runCommand", params={"api-version": COMPUTE},
            json={"commandId": "RunShellScript", "script": ["echo from $HOSTNAME"]})
        assert accepted.status_code == 202, accepted.text
        deadline = time.monotonic() + 20
        while (answer := await api.client.get(accepted.headers["Location"])).status_code == 202:
            assert time.monotonic() < deadline, "the action run did not end"
            await asyncio.sleep(0.05)
    assert answer.status_code == 200, answer.text
    spec_index().validate_response("VirtualMachineScaleSetVMs_RunCommand", 200, answer.json())
    [status] = answer.json()["value"]
    assert "from uni000001" in status["message"]


def test_fleet_file_scale_set_errors_name_the_field() -> None:
    with pytest.raises(FleetFileError, match=r"scale_sets\[0\]\.orchestration: 'Mixed'"):
        _fleet(orchestration="Mixed")
    with pytest.raises(FleetFileError, match=r"scale_sets\[0\]\.count: the number of instances"):
        _fleet(count=0)
    with pytest.raises(FleetFileError, match=r"scale_sets\[0\]\.status: unknown key"):
        _fleet(status="connected")
