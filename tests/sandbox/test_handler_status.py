"""A run command's extension status in the VM's instance view follows the handler's state.

Over HTTP to an in-process sandbox: while the script runs the extension is transitioning,
once it ends it has succeeded (even for a failing script), and it fails only under
``treatFailureAsDeploymentFailure``; its message is the run's instanceView JSON, as the
handler's status file carries it. Every status is checked against the spec's
``InstanceViewStatus`` and against the codes the spec example shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.sandbox.arm_client import COMPUTE, Api, make_fleet, sandbox_api
from tests.sandbox.openapi import SPECS_DIR, spec_index

VM = Api.vm_path("vm-1")
LINUX_VM = {"name": "vm-1", "kind": "vm", "os": "linux"}
STATUS_SCHEMA = "compute/ComputeRP/stable/2025-04-01/computeRPCommon.json" \
    "#/definitions/InstanceViewStatus"
EXAMPLE = SPECS_DIR / ("compute/ComputeRP/stable/2025-04-01/examples/virtualMachineExamples/"
                       "VirtualMachine_Get_InstanceView.json")


async def extension_statuses(api: Api) -> dict[str, dict[str, Any]]:
    response = await api.client.get(f"{VM}/instanceView", params={"api-version": COMPUTE})
    assert response.status_code == 200, response.text
    view = response.json()
    index = spec_index()
    schema = index.schema(STATUS_SCHEMA)
    for status in [*view["statuses"], *view["vmAgent"]["statuses"],
                   *(s for e in view.get("extensions", []) for s in e["statuses"])]:
        assert index.errors(schema, status) == [], status
    return {e["name"]: e["statuses"][0] for e in view.get("extensions", [])}


def running(body: dict[str, Any]) -> bool:
    return body["properties"].get("instanceView", {}).get("executionState") == "Running"


async def test_extension_status_follows_the_run(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    wait_gate = f"while [ ! -e {gate} ]; do sleep 0.05; done\n"
    async with sandbox_api(make_fleet(LINUX_VM), tmp_path) as api:
        for name, props in {
            "ok": {"source": {"script": wait_gate + "echo fine"}},
            "bad": {"source": {"script": wait_gate + "exit 3"}},
            "fatal": {"source": {"script": wait_gate + "exit 4"},
                      "treatFailureAsDeploymentFailure": True},
        }.items():
            assert (await api.put(VM, name, props)).status_code == 201
        for name in ("ok", "bad", "fatal"):
            await api.wait_for(VM, name, running)

        during = await extension_statuses(api)
        gate.touch()
        views = {name: (await api.wait_for(VM, name))["properties"]["instanceView"]
                 for name in ("ok", "bad", "fatal")}
        after = await extension_statuses(api)

    for status in during.values():
        assert (status["code"], status["level"], status["displayStatus"]) == (
            "ProvisioningState/transitioning", "Info", "Transitioning")
        message = json.loads(status["message"])
        assert (message["executionState"], message["endTime"]) == ("Running", "")
    shown = json.loads(EXAMPLE.read_text())["responses"]["200"]["body"]["extensions"][0]
    succeeded = tuple(shown["statuses"][0][k] for k in ("code", "level", "displayStatus"))
    for name in ("ok", "bad"):
        status = after[name]
        assert (status["code"], status["level"], status["displayStatus"]) == succeeded
        message = json.loads(status["message"])
        assert list(message) == ["executionState", "executionMessage", "output", "error",
                                 "exitCode", "startTime", "endTime"]
        view = views[name]
        assert (message["executionState"], message["exitCode"], message["output"]) == (
            view["executionState"], view["exitCode"], view["output"])
        assert message["endTime"].endswith("Z")
    assert (after["fatal"]["code"], after["fatal"]["level"]) == (
        "ProvisioningState/failed/4", "Error")

