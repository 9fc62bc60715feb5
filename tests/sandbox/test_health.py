"""Machine and agent health through the ARM API, and what it does to run commands.

VM agent Not Ready, deallocated VMs, disconnected/erroring/expired Arc machines, Arc agents
too old for run commands, and the agent faults (``disconnect_after``, ``stuck``,
``blob_delay``) as a client sees them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from core.sandbox.service import machine_folder
from tests.sandbox.arm_client import ARC, COMPUTE, Api, make_fleet, sandbox_api

STORAGE_VERSION = "2022-11-02"


def state(body: Mapping[str, Any]) -> tuple[str, str]:
    props = body["properties"]
    return props["provisioningState"], props.get("instanceView", {}).get("executionState", "")


def running(body: Mapping[str, Any]) -> bool:
    return state(body)[1] == "Running"


async def vm_view(api: Api, path: str) -> dict[str, Any]:
    response = await api.client.get(path, params={"api-version": COMPUTE,
                                                  "$expand": "instanceView"})
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()["properties"]["instanceView"]
    return view


async def arc_props(api: Api, path: str) -> dict[str, Any]:
    response = await api.client.get(path, params={"api-version": ARC})
    assert response.status_code == 200, response.text
    props: dict[str, Any] = response.json()["properties"]
    return props


async def operation(api: Api, put: httpx.Response) -> dict[str, Any]:
    response = await api.client.get(put.headers["Azure-AsyncOperation"])
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_path(path: Path, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {within} s"
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------------- VMs


async def test_not_ready_vm_agent_fails_run_commands_after_the_agent_timeout(
    tmp_path: Path
) -> None:
    vm = Api.vm_path("nr-1")
    marker = tmp_path / "ran"
    fleet = make_fleet({"name": "nr-1", "kind": "vm", "os": "linux", "agent": "not-ready"},
                       agent_timeout=1)
    async with sandbox_api(fleet, tmp_path) as api:
        agent = (await vm_view(api, vm))["vmAgent"]
        assert agent["statuses"][0]["displayStatus"] == "Not Ready"
        assert agent["statuses"][0]["code"] == "ProvisioningState/Unavailable"
        began = time.monotonic()
        put = await api.put(vm, "hello", {"source": {"script": f"touch {marker}"}})
        assert put.status_code == 201, put.text
        await asyncio.sleep(0.4)
        assert state((await api.get(vm, "hello")).json()) == ("Creating", "Unknown")
        assert (await operation(api, put))["status"] == "InProgress"
        body = await api.wait_for(vm, "hello",
                                  lambda b: b["properties"]["provisioningState"] != "Creating")
        assert time.monotonic() - began >= 0.9
        assert state(body) == ("Failed", "Unknown")
        status = await operation(api, put)
        assert status["status"] == "Failed"
        assert status["error"]["code"] == "VMAgentStatusCommunicationError"
        assert "nr-1" in status["error"]["message"]
        assert not marker.exists()


async def test_deallocated_vm_refuses_run_commands(tmp_path: Path) -> None:
    vm = Api.vm_path("off-1")
    fleet = make_fleet({"name": "off-1", "kind": "vm", "os": "linux", "power": "deallocated"})
    async with sandbox_api(fleet, tmp_path) as api:
        view = await vm_view(api, vm)
        assert "PowerState/deallocated" in [s["code"] for s in view["statuses"]]
        assert "vmAgent" not in view
        put = await api.put(vm, "hello", {"source": {"script": "echo hi"}})
        assert put.status_code == 409, put.text
        assert put.json()["error"]["code"] == "OperationNotAllowed"
        assert (await api.get(vm, "hello")).status_code == 404


# ------------------------------------------------------------------------------- Arc


async def test_unreachable_arc_machines_leave_run_commands_creating(tmp_path: Path) -> None:
    machines = {"disconnected": "Disconnected", "error": "Error", "expired": "Expired"}
    fleet = make_fleet(*({"name": f"arc-{s}", "kind": "arc", "os": "linux", "status": s,
                          "agent_version": "1.45.02800.0"} for s in machines), agent_timeout=0.5)
    async with sandbox_api(fleet, tmp_path) as api:
        puts = {}
        for status, shown in machines.items():
            path = Api.arc_path(f"arc-{status}")
            props = await arc_props(api, path)
            assert props["status"] == shown
            if status == "error":
                assert props["errorDetails"]
            put = await api.put(path, "hello", {"source": {"script": f"touch {status}"}})
            assert put.status_code == 201, put.text
            puts[status] = put
        await asyncio.sleep(1.2)  # well past agent_timeout: Arc does not give up
        for status, put in puts.items():
            path = Api.arc_path(f"arc-{status}")
            assert state((await api.get(path, "hello")).json()) == ("Creating", "Unknown")
            assert (await operation(api, put))["status"] == "InProgress"
        assert not list(tmp_path.rglob("script.sh"))


async def test_arc_agent_older_than_1_33_fails_run_commands(tmp_path: Path) -> None:
    path = Api.arc_path("legacy-1")
    fleet = make_fleet({"name": "legacy-1", "kind": "arc", "os": "linux",
                        "agent_version": "1.29.02286.0"})
    async with sandbox_api(fleet, tmp_path) as api:
        assert (await arc_props(api, path))["agentVersion"] == "1.29.02286.0"
        put = await api.put(path, "hello", {"source": {"script": "echo hi"}})
        assert put.status_code == 201, put.text
        body = await api.wait_for(path, "hello",
                                  lambda b: b["properties"]["provisioningState"] == "Failed")
        assert body["properties"]["instanceView"]["executionState"] == "Unknown"
        status = await operation(api, put)
        assert status["status"] == "Failed"
        assert "1.33" in status["error"]["message"]
        assert "1.29.02286.0" in status["error"]["message"]


# ------------------------------------------------------------------------------ faults

_TICKER = ("#!/bin/bash\n"
           "for i in $(seq 1 15); do echo \"tick $i\"; sleep 0.1; done\n"
           "touch finished\n")


async def test_disconnect_after_freezes_the_run(tmp_path: Path) -> None:
    vm = Api.vm_path("flaky-vm")
    arc = Api.arc_path("flaky-arc")
    faults = {"disconnect_after": 0.5}
    fleet = make_fleet(
        {"name": "flaky-vm", "kind": "vm", "os": "linux", "faults": faults},
        {"name": "flaky-arc", "kind": "arc", "os": "linux", "agent_version": "1.45.02800.0",
         "faults": faults},
    )
    full = "".join(f"tick {i}\n" for i in range(1, 16))
    async with sandbox_api(fleet, tmp_path) as api:
        assert (await vm_view(api, vm))["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"
        before = await arc_props(api, arc)
        assert before["status"] == "Connected"
        for path in (vm, arc):
            put = await api.put(path, "ticker", {"source": {"script": _TICKER}})
            assert put.status_code == 201, put.text
        for path in (vm, arc):
            await api.wait_for(path, "ticker", running)

        deadline = time.monotonic() + 5
        while (await vm_view(api, vm))["vmAgent"]["statuses"][0]["displayStatus"] == "Ready":
            assert time.monotonic() < deadline, "the VM agent never dropped off"
            await asyncio.sleep(0.05)
        assert (await vm_view(api, vm))["vmAgent"]["statuses"][0]["displayStatus"] == "Not Ready"
        while (after := await arc_props(api, arc))["status"] == "Connected":
            assert time.monotonic() < deadline, "the Arc machine never disconnected"
            await asyncio.sleep(0.05)
        assert after["status"] == "Disconnected"
        assert (datetime.fromisoformat(after["lastStatusChange"])
                > datetime.fromisoformat(before["lastStatusChange"]))

        frozen = {path: await api.view(path, "ticker") for path in (vm, arc)}
        for spec in fleet.machines:
            await wait_path(tmp_path / "machines" / machine_folder(spec) / "download"
                            / "ticker" / "1" / "finished")
        await asyncio.sleep(0.3)  # several flush intervals after the scripts ended
        for path in (vm, arc):
            body = (await api.get(path, "ticker")).json()
            view = body["properties"]["instanceView"]
            assert view == frozen[path]
            assert view["executionState"] == "Running"
            assert "endTime" not in view
            assert view["output"] != full and full.startswith(view["output"])
            assert body["properties"]["provisioningState"] == "Creating"


async def test_stuck_agent_reports_running_forever(tmp_path: Path) -> None:
    vm = Api.vm_path("stuck-1")
    fleet = make_fleet({"name": "stuck-1", "kind": "vm", "os": "linux",
                        "faults": {"stuck": True}})
    marker = tmp_path / "side-effect"
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(vm, "hello", {"source": {"script": f"echo hi; touch {marker}"}})
        assert put.status_code == 201, put.text
        await wait_path(marker)
        await asyncio.sleep(0.5)  # five flush intervals after the script is done
        body = (await api.get(vm, "hello")).json()
        view = body["properties"]["instanceView"]
        assert state(body) == ("Creating", "Running")
        assert view["output"] == ""
        assert "endTime" not in view
        assert (await operation(api, put))["status"] == "InProgress"


async def test_blob_delay_makes_the_output_blob_appear_late(tmp_path: Path) -> None:
    vm = Api.vm_path("slowblob-1")
    fleet = make_fleet({"name": "slowblob-1", "kind": "vm", "os": "linux",
                        "faults": {"blob_delay": 1.0}})
    async with sandbox_api(fleet, tmp_path) as api:
        url = api.blob_url("late/out")
        headers = {"x-ms-version": STORAGE_VERSION}
        put = await api.put(vm, "hello", {"source": {"script": "echo hello"},
                                          "outputBlobUri": url})
        assert put.status_code == 201, put.text
        await api.wait_for(vm, "hello", running)
        seen_running = time.monotonic()
        missing = await api.client.head(url, headers=headers)
        assert missing.status_code == 404
        deadline = seen_running + 10
        while (await api.client.head(url, headers=headers)).status_code == 404:
            assert time.monotonic() < deadline, "the output blob never appeared"
            await asyncio.sleep(0.05)
        assert time.monotonic() - seen_running >= 0.5
        body = await api.wait_for(vm, "hello")
        assert state(body) == ("Succeeded", "Succeeded")
        blob = await api.client.get(url, headers=headers)
        assert blob.status_code == 200
        assert blob.content == b"hello\n"
