"""The machine inventory from Resource Graph, and health on demand, against a served sandbox.

Every test speaks HTTP to a real sandbox server on loopback through ``ArmClient``, as fleetrun
does with Azure. Ground truth: ``azure-run-command.md`` sections 5 and 6.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.azure.arm import ArmClient, ArmError, RetryPolicy
from core.azure.auth import StaticToken
from core.azure.machine_health import refine_health
from core.inventory import azure_graph
from core.inventory.azure_graph import query_machines, quota_wait
from core.model import Health, HealthStatus, Machine, MachineKind, OsType
from core.sandbox.fleet import FleetSpec, default_fleet
from core.sandbox.machines import SimMachine
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService
from tests.sandbox.arm_client import make_fleet

SUB_A = "11111111-1111-4111-8111-111111111111"
SUB_B = "22222222-2222-4222-8222-222222222222"
TOKEN = "graph-test-token"
SIMULATED = {"executor": "simulated"}
FAST_RETRY = RetryPolicy(attempts=2, backoff=0.01, backoff_cap=0.02)


@dataclass
class Served:
    """A sandbox on loopback, an ArmClient pointed at it, and every answer the client got."""

    service: SandboxService
    arm: ArmClient
    base_url: str
    answers: list[tuple[str, str, int]] = field(default_factory=list)

    def graph_statuses(self) -> list[int]:
        return [status for _, path, status in self.answers if path == azure_graph.GRAPH_PATH]

    def sim(self, name: str) -> SimMachine:
        return next(m for m in self.service.all_machines() if m.name == name)


class InjectRows(httpx.AsyncBaseTransport):
    """Passes requests to the real server and adds ``rows`` to Resource Graph's first page."""

    def __init__(self, rows: list[Any]) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._rows = rows

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != azure_graph.GRAPH_PATH or response.status_code != 200:
            return response
        body = json.loads(await response.aread())
        body["data"] = [*self._rows, *body["data"]]
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding")}
        return httpx.Response(200, headers=headers, content=json.dumps(body).encode())

    async def aclose(self) -> None:
        await self._inner.aclose()


@asynccontextmanager
async def served(
    fleet: FleetSpec, root: Path, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Served]:
    service = SandboxService(fleet, root=root)
    server = SandboxServer(service, token=TOKEN, port=0)
    answers: list[tuple[str, str, int]] = []

    async def record(response: httpx.Response) -> None:
        answers.append((response.request.method, response.request.url.path,
                        response.status_code))

    try:
        base = await server.start()
        async with httpx.AsyncClient(transport=transport, trust_env=False,
                                     event_hooks={"response": [record]}) as http:
            arm = ArmClient(base, StaticToken(TOKEN), http=http, retry=FAST_RETRY)
            yield Served(service, arm, base, answers)
    finally:
        await server.stop()
        await service.aclose()


def by_name(machines: list[Machine]) -> dict[str, Machine]:
    return {m.name: m for m in machines}


# ----------------------------------------------------------------------------- listing


async def test_2500_machines_in_two_subscriptions_come_once_each_over_three_pages(
    tmp_path: Path,
) -> None:
    fleet = make_fleet(
        {"name": "vm-{n:04}", "count": 1200, "kind": "vm", "os": "linux",
         "subscription": SUB_A, "tags": {"tier": "web"}, **SIMULATED},
        {"name": "winvm-{n:04}", "count": 300, "kind": "vm", "os": "windows",
         "subscription": SUB_A, "location": "northeurope", **SIMULATED},
        {"name": "arc-{n:04}", "count": 900, "kind": "arc", "os": "linux",
         "subscription": SUB_B, "location": "eastus", **SIMULATED},
        {"name": "winarc-{n:04}", "count": 100, "kind": "arc", "os": "windows",
         "subscription": SUB_B, "location": "eastus", **SIMULATED},
    )
    async with served(fleet, tmp_path) as sandbox:
        machines = await query_machines(sandbox.arm, [SUB_A, SUB_B])
        pages = sandbox.graph_statuses()

    assert pages == [200, 200, 200]
    assert len(machines) == 2500
    expected = {
        sim.resource_id: (MachineKind(sim.spec.kind), OsType(sim.spec.os),
                          sim.spec.subscription, sim.spec.location, dict(sim.spec.tags))
        for sim in sandbox.service.all_machines()
    }
    got = {m.id: (m.kind, m.os, m.subscription, m.location, dict(m.tags)) for m in machines}
    assert got == expected


async def test_the_id_is_the_full_arm_resource_id_that_arm_answers_to(tmp_path: Path) -> None:
    async with served(default_fleet(), tmp_path) as sandbox:
        machines = by_name(await query_machines(sandbox.arm, []))
        web = machines["web-01"]
        assert web.id == (f"/subscriptions/{SUB_A}/resourceGroups/rg-prod-web/providers/"
                          "Microsoft.Compute/virtualMachines/web-01")
        assert machines["onprem-dc-01"].id == (
            f"/subscriptions/{SUB_B}/resourceGroups/rg-onprem/providers/"
            "Microsoft.HybridCompute/machines/onprem-dc-01")
        resource = await sandbox.arm.get(web.id)
        assert resource["id"] == web.id


async def test_the_subscriptions_filter_keeps_only_their_machines(tmp_path: Path) -> None:
    async with served(default_fleet(), tmp_path) as sandbox:
        only_b = await query_machines(sandbox.arm, [SUB_B])
        everything = await query_machines(sandbox.arm, [])

    assert {m.name for m in only_b} == {
        "stg-web-01", "stg-web-02", "onprem-batch-01", "onprem-batch-02", "onprem-legacy-01",
        "onprem-dc-01", "stg-win-01", "onprem-locked-01", "onprem-monitor-01"}
    assert {m.subscription for m in only_b} == {SUB_B}
    # A Uniform scale set instance is shown as set/instance id, not by its ARM name (set_id).
    assert {m.name for m in everything} == {
        f"{s.scale_set}/{s.instance_id}" if s.uniform else s.name
        for s in default_fleet().machines}


async def test_many_subscriptions_are_queried_in_batches_within_the_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_graph, "SUBSCRIPTION_BATCH", 1)
    fleet = make_fleet({"name": "a-vm", "subscription": SUB_A, **SIMULATED},
                       {"name": "b-arc", "kind": "arc", "subscription": SUB_B, **SIMULATED},
                       throttle={"graph_queries": 1, "graph_window": "1s"})
    async with served(fleet, tmp_path) as sandbox:
        machines = await query_machines(sandbox.arm, [SUB_A, SUB_B])
        # One query per batch, the second held until the quota came back (no 429).
        assert sandbox.graph_statuses() == [200, 200]
    assert {m.name for m in machines} == {"a-vm", "b-arc"}


# ----------------------------------------------------------------------------- health

GRAPH_HEALTH = {
    # Resource Graph knows a VM's power state but not its agent: running VMs are Unknown.
    "web-01": (HealthStatus.UNKNOWN, "agent not checked yet", None),
    "web-05": (HealthStatus.UNKNOWN, "agent not checked yet", None),
    "db-01": (HealthStatus.UNKNOWN, "agent not checked yet", None),
    "db-02": (HealthStatus.DEALLOCATED, "VM deallocated", None),
    "win-app-01": (HealthStatus.UNKNOWN, "agent not checked yet", None),
    "stg-web-01": (HealthStatus.READY, "", "1.45.02800.0"),
    "onprem-batch-02": (HealthStatus.DISCONNECTED, "Arc status Disconnected", "1.45.02800.0"),
    "onprem-legacy-01": (HealthStatus.AGENT_TOO_OLD, "older than 1.33", "1.29.02286.0"),
    "stg-win-01": (HealthStatus.READY, "", "1.45.02800.0"),
    "onprem-locked-01": (HealthStatus.BLOCKED, "runcommandhandlerlinux is on the agent's "
                         "extensions blocklist", "1.45.02800.0"),
    "onprem-monitor-01": (HealthStatus.BLOCKED, "monitor mode", "1.45.02800.0"),
}


def sandbox_truth(sim: SimMachine) -> HealthStatus:
    """What the sandbox's simulated machine is, in fleetrun's health vocabulary."""
    if sim.is_vm:
        if sim.power != "running":
            return HealthStatus.DEALLOCATED
        return HealthStatus.READY if sim.agent_ready else HealthStatus.NOT_READY
    if sim.arc_status != "connected":
        return HealthStatus.DISCONNECTED
    if not sim.agent_supports_run_commands:
        return HealthStatus.AGENT_TOO_OLD
    return HealthStatus.BLOCKED if sim.local_block else HealthStatus.READY


def summary(health: Health) -> tuple[HealthStatus, str, str | None]:
    return health.status, health.detail, health.agent_version


async def test_health_from_the_graph_alone(tmp_path: Path) -> None:
    async with served(default_fleet(), tmp_path) as sandbox:
        machines = by_name(await query_machines(sandbox.arm, []))
    for name, (status, detail, version) in GRAPH_HEALTH.items():
        health = machines[name].health
        assert health.status is status, name
        assert detail in health.detail, name
        assert health.agent_version == version, name
    statuses = {m.health.status for m in machines.values() if m.kind is MachineKind.VM}
    assert statuses == {HealthStatus.UNKNOWN, HealthStatus.DEALLOCATED}


async def test_refined_health_matches_what_the_sandbox_says(tmp_path: Path) -> None:
    async with served(default_fleet(), tmp_path) as sandbox:
        machines = await query_machines(sandbox.arm, [])
        refined = await refine_health(sandbox.arm, machines, concurrency=4)
        sims = {sim.resource_id: sim for sim in sandbox.service.all_machines()}
        reads = sandbox.arm.sent["reads"]

    assert reads == len(machines)  # one GET per machine
    assert set(refined) == {m.id for m in machines}
    for machine in machines:
        sim = sims[machine.id]
        assert refined[machine.id].status is sandbox_truth(sim), machine.name
        assert refined[machine.id].runnable is (sim.can_run and not sim.local_block), \
            machine.name
    names = {m.id: m.name for m in machines}
    health = {names[i]: h for i, h in refined.items()}
    assert summary(health["web-05"]) == (HealthStatus.NOT_READY, "VM Agent is unresponsive.",
                                         "Unknown")
    assert summary(health["web-01"]) == (HealthStatus.READY, "", "2.7.41491.1102")
    assert summary(health["db-02"]) == (HealthStatus.DEALLOCATED, "VM deallocated", None)
    assert health["onprem-batch-02"].status is HealthStatus.DISCONNECTED
    assert health["onprem-legacy-01"].status is HealthStatus.AGENT_TOO_OLD
    assert summary(health["onprem-dc-01"]) == (HealthStatus.READY, "", "1.45.02800.0")
    assert health["onprem-locked-01"].remedy == (
        'sudo azcmagent config set extensions.blocklist ""',)
    assert health["onprem-monitor-01"].remedy == ("azcmagent config set config.mode full",)
    assert all(h.checked_at is not None for h in refined.values())


async def test_refine_health_sees_changes_the_graph_listing_predates(tmp_path: Path) -> None:
    async with served(default_fleet(), tmp_path) as sandbox:
        machines = by_name(await query_machines(sandbox.arm, []))
        sandbox.sim("web-01").disconnect()  # VM agent goes Not Ready
        sandbox.sim("stg-web-01").disconnect()  # Arc heartbeats stop
        refined = await refine_health(sandbox.arm, [machines["web-01"], machines["stg-web-01"]])

    assert refined[machines["web-01"].id].status is HealthStatus.NOT_READY
    assert refined[machines["stg-web-01"].id].status is HealthStatus.DISCONNECTED


async def test_an_arm_error_makes_that_one_machine_unknown(tmp_path: Path) -> None:
    fleet = make_fleet(
        {"name": "good", "kind": "vm", **SIMULATED},
        {"name": "flaky", "kind": "arc", "faults": {"error_rate": 1.0}, **SIMULATED},
    )
    async with served(fleet, tmp_path) as sandbox:
        machines = by_name(await query_machines(sandbox.arm, []))
        gone = Machine(id=machines["good"].id.replace("/good", "/gone"), name="gone",
                       kind=MachineKind.VM, os=OsType.LINUX)
        not_arm = Machine(id="https://example.invalid/steal-my-token", name="odd",
                          kind=MachineKind.VM, os=OsType.LINUX)
        refined = await refine_health(
            sandbox.arm, [machines["good"], machines["flaky"], gone, not_arm])
        sent_to = {path for _, path, _ in sandbox.answers}

    assert refined[machines["good"].id].status is HealthStatus.READY
    flaky = refined[machines["flaky"].id]
    assert flaky.status is HealthStatus.UNKNOWN
    assert "500" in flaky.detail or "503" in flaky.detail
    missing = refined[gone.id]
    assert missing.status is HealthStatus.UNKNOWN
    assert "404" in missing.detail and "gone" in missing.detail
    assert refined[not_arm.id].status is HealthStatus.UNKNOWN
    assert "/steal-my-token" not in sent_to


async def test_refine_health_leaves_out_machines_that_are_not_azure(tmp_path: Path) -> None:
    ssh = Machine(id="ssh:web", name="web", kind=MachineKind.SSH, os=OsType.LINUX)
    async with served(default_fleet(), tmp_path) as sandbox:
        assert await refine_health(sandbox.arm, [ssh]) == {}
        assert sandbox.answers == []
        with pytest.raises(ValueError, match="concurrency"):
            await refine_health(sandbox.arm, [ssh], concurrency=0)


# ----------------------------------------------------------------------------- quota


async def test_a_resource_graph_429_is_waited_out(tmp_path: Path) -> None:
    fleet = make_fleet({"name": "vm-{n}", "count": 3, "kind": "vm", **SIMULATED},
                       throttle={"graph_queries": 1, "graph_window": "1s"})
    async with served(fleet, tmp_path) as sandbox:
        # Someone else with the same identity spends the quota first.
        async with httpx.AsyncClient(base_url=sandbox.base_url, trust_env=False) as other:
            spent = await other.post(azure_graph.GRAPH_PATH,
                                     params={"api-version": "2024-04-01"},
                                     headers={"Authorization": f"Bearer {TOKEN}"},
                                     json={"query": "Resources | project id"})
            assert spent.status_code == 200
        machines = await query_machines(sandbox.arm, [])
        statuses = sandbox.graph_statuses()

    # One 429, then success: a client that did not wait would have met 429 again.
    assert statuses == [429, 200]
    assert {m.name for m in machines} == {"vm-1", "vm-2", "vm-3"}


async def test_a_spent_quota_holds_the_next_page_instead_of_meeting_a_429(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_graph, "PAGE_SIZE", 2)
    fleet = make_fleet({"name": "vm-{n}", "count": 5, "kind": "vm", **SIMULATED},
                       throttle={"graph_queries": 2, "graph_window": "1s"})
    async with served(fleet, tmp_path) as sandbox:
        machines = await query_machines(sandbox.arm, [])
        statuses = sandbox.graph_statuses()

    assert statuses == [200, 200, 200]
    assert [m.name for m in machines] == ["vm-1", "vm-2", "vm-3", "vm-4", "vm-5"]


@pytest.mark.parametrize("remaining, resets, wait", [
    ("3", "00:00:04", 0.0),
    ("0", "00:00:04", 4.0),
    ("0", "01:02:03", 3723.0),
    ("0", "00:00:00", azure_graph.QUOTA_RESOLUTION),
    ("0", "soon", azure_graph.QUOTA_RESOLUTION),
    (None, "00:00:04", 0.0),
    ("lots", "00:00:04", 0.0),
])
def test_quota_wait_reads_the_headers(remaining: str | None, resets: str, wait: float) -> None:
    headers = {"x-ms-user-quota-resets-after": resets}
    if remaining is not None:
        headers["x-ms-user-quota-remaining"] = remaining
    assert quota_wait(headers) == wait


# ----------------------------------------------------------------------------- bad rows


async def test_garbage_rows_are_skipped_with_a_warning_naming_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base_id = f"/subscriptions/{SUB_A}/resourceGroups/rg/providers/Microsoft.Compute"
    garbage = [
        42,
        {"name": "no-id-vm", "type": "microsoft.compute/virtualmachines", "osType": "linux"},
        {"id": f"{base_id}/virtualMachines/solaris-01", "name": "solaris-01",
         "type": "microsoft.compute/virtualmachines", "osType": "solaris"},
        {"id": f"{base_id}/disks/disk-01", "name": "disk-01", "type": "microsoft.compute/disks",
         "osType": "linux"},
        {"id": None, "name": None},
    ]
    fleet = make_fleet({"name": "vm-{n}", "count": 2, "kind": "vm", **SIMULATED},
                       {"name": "arc-1", "kind": "arc", "os": "windows", **SIMULATED})
    transport = InjectRows(garbage)
    caplog.set_level(logging.WARNING, logger=azure_graph.__name__)
    async with served(fleet, tmp_path, transport=transport) as sandbox:
        machines = await query_machines(sandbox.arm, [])

    assert {m.name for m in machines} == {"vm-1", "vm-2", "arc-1"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(garbage)
    text = "\n".join(warnings)
    assert "no-id-vm" in text
    assert "solaris-01" in text and "'solaris'" in text
    assert "disk-01" in text
    assert "not an object" in text


async def test_a_query_the_service_refuses_raises_arm_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_graph, "MACHINES_QUERY", "Resources | project")
    async with served(default_fleet(), tmp_path) as sandbox:
        with pytest.raises(ArmError) as caught:
            await query_machines(sandbox.arm, [])
    assert caught.value.status == 400
