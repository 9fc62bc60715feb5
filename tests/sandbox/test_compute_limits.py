"""Compute's own limits: HighCostGet counted over 3- and 30-minute windows, as clients see it.

Instance-view GETs of VMs answer ``x-ms-ratelimit-remaining-resource`` once per policy,
counting down; a spent window is CRP's 429 (``OperationNotAllowed`` with JSON in
``details[].message``) with a ``Retry-After`` until the window frees a slot, minutes for the
30-minute one. Run-command GETs are in no group unless a fleet file puts them in one.
Counted per (subscription, region of the machine), whoever calls. The windows run on a
clock the test moves. Ground truth: ``azure-run-command.md`` 7.3.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.access import Access, new_token
from core.sandbox.app import SandboxApp
from core.sandbox.compute_limits import ComputeThrottle
from core.sandbox.fleet import FleetSpec, default_fleet
from core.sandbox.service import SandboxService
from core.sandbox.throttle import ArmThrottle
from tests.sandbox.arm_client import IN_PROCESS, IN_PROCESS_HOST, Api, make_fleet
from tests.sandbox.test_throttling import SUB2, FakeClock, remaining

HEADER = "x-ms-ratelimit-remaining-resource"
B_TOKEN = "engineer-b-token-0123456789abcdef"
SMALL = {"operations": ["vm_instance_view"], "per_3min": 3, "per_30min": 5}
SCRIPT = {"source": {"script": "echo hi"}}


def _fleet(groups: dict[str, Any] | None = None, **compute: Any) -> FleetSpec:
    simulated = {"executor": "simulated", "simulate": {"duration": "10ms"}}
    table = {**compute, "groups": groups if groups is not None else {"HighCostGet": SMALL}}
    return make_fleet(
        {"name": "vm1", "kind": "vm", **simulated},
        {"name": "vm2", "kind": "vm", **simulated},
        {"name": "vm-north", "kind": "vm", "location": "northeurope", **simulated},
        {"name": "vm-other", "kind": "vm", "subscription": SUB2, **simulated},
        {"name": "arc1", "kind": "arc", **simulated},
        throttle={"reads": {"capacity": 1000, "refill_per_second": 100}, "compute": table},
        principals=[{"name": "engineer-b", "token": B_TOKEN}],
    )


@asynccontextmanager
async def clocked(
    fleet: FleetSpec, root: Path, clock: FakeClock, token: str | None = None
) -> AsyncIterator[Api]:
    service = SandboxService(fleet, root=root)
    own = new_token()
    app = SandboxApp(service, Access(own, frozenset({IN_PROCESS_HOST}),
                                     {p.name: p.token for p in fleet.principals}))
    app.arm.throttle = ArmThrottle(fleet.throttle, clock=clock)
    app.arm.compute_throttle = ComputeThrottle(fleet.throttle.compute, clock=clock)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS,
                                     headers={"Authorization": f"Bearer {token or own}"}
                                     ) as client:
            yield Api(service, client, IN_PROCESS, app)
    finally:
        await service.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def view(api: Api, machine: str = "vm1", sub: str | None = None,
               client: httpx.AsyncClient | None = None) -> httpx.Response:
    path = Api.vm_path(machine) if sub is None else Api.vm_path(machine, sub=sub)
    return await (client or api.client).get(
        path, params={"api-version": "2025-04-01", "$expand": "instanceView"})


def left(answer: httpx.Response) -> list[str]:
    return answer.headers.get_list(HEADER)


def assert_crp_429(answer: httpx.Response, policy: str, allowed: int, measured: int) -> int:
    """CRP's 429 as the reference shows it; returns its Retry-After."""
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["code"] == "OperationNotAllowed"
    assert "too many requests have been received for this subscription" in body["message"]
    [detail] = body["details"]
    assert (detail["code"], detail["target"]) == ("TooManyRequests", "HighCostGet")
    counts = json.loads(detail["message"])
    assert counts["operationGroup"] == policy
    assert (counts["allowedRequestCount"], counts["measuredRequestCount"]) == (allowed, measured)
    assert counts["startTime"] < counts["endTime"]
    assert f"Microsoft.Compute/{policy};0" in left(answer)
    return int(answer.headers["Retry-After"])


async def test_documented_defaults_count_instance_views_as_high_cost_get(
    tmp_path: Path, clock: FakeClock
) -> None:
    fleet = default_fleet()
    vm = "/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-prod-web/" \
         "providers/Microsoft.Compute/virtualMachines/web-01"
    async with clocked(fleet, tmp_path, clock) as api:
        first = await api.client.get(vm, params={"api-version": "2025-04-01",
                                                 "$expand": "instanceView"})
        assert first.status_code == 200, first.text
        # The reference's example value, from a fresh 3-minute window.
        assert left(first) == ["Microsoft.Compute/HighCostGet3Min;159",
                               "Microsoft.Compute/HighCostGet30Min;299"]
        assert first.headers["x-ms-request-charge"] == "1"
        second = await api.client.get(vm + "/instanceView", params={"api-version": "2025-04-01"})
        assert left(second) == ["Microsoft.Compute/HighCostGet3Min;158",
                                "Microsoft.Compute/HighCostGet30Min;298"]
        # A plain GET of the VM and run-command GETs are in no group by default.
        plain = await api.client.get(vm, params={"api-version": "2025-04-01"})
        assert plain.status_code == 200 and HEADER not in plain.headers
        put = await api.put(vm, "probe", SCRIPT)
        assert put.status_code == 201 and HEADER not in put.headers
        polled = await api.get(vm, "probe")
        assert polled.status_code == 200 and HEADER not in polled.headers


async def test_the_3_minute_window_429s_until_it_frees_a_slot(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with clocked(_fleet(), tmp_path, clock) as api:
        counts = [left(await view(api)) for _ in range(3)]
        assert [c[0] for c in counts] == [f"Microsoft.Compute/HighCostGet3Min;{n}"
                                          for n in (2, 1, 0)]
        assert [c[1] for c in counts] == [f"Microsoft.Compute/HighCostGet30Min;{n}"
                                          for n in (4, 3, 2)]
        clock.advance(60)
        refused = await view(api)
        assert assert_crp_429(refused, "HighCostGet3Min", 3, 4) == 120
        # ARM let it through first: its read was charged (the bucket had refilled to 1000).
        assert remaining(refused, "reads")[0] == 999
        assert "x-ms-request-charge" not in refused.headers
        clock.advance(120)
        again = await view(api)
        assert again.status_code == 200, again.text
        assert left(again)[0] == "Microsoft.Compute/HighCostGet3Min;2"


async def test_the_30_minute_window_429s_with_a_long_retry_after(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with clocked(_fleet(), tmp_path, clock) as api:
        for _ in range(3):
            assert (await view(api)).status_code == 200
        clock.advance(180)  # the 3-minute window is free again; the 30-minute one is not
        for _ in range(2):
            assert (await view(api)).status_code == 200
        refused = await view(api, "vm2")  # another VM of the region: the same budget
        retry = assert_crp_429(refused, "HighCostGet30Min", 5, 6)
        assert retry == 1800 - 180
        assert left(refused) == ["Microsoft.Compute/HighCostGet3Min;1",
                                 "Microsoft.Compute/HighCostGet30Min;0"]
        clock.advance(retry - 1)
        assert (await view(api)).status_code == 429
        clock.advance(1)
        assert (await view(api)).status_code == 200


async def test_counted_per_subscription_and_region_whoever_calls(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with clocked(_fleet(), tmp_path, clock) as api:
        for _ in range(3):
            assert (await view(api)).status_code == 200
        assert api.app is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app),
                                     base_url=IN_PROCESS,
                                     headers={"Authorization": f"Bearer {B_TOKEN}"}) as other:
            # Another principal: its own ARM buckets, but the same Compute budget.
            theirs = await view(api, client=other)
            assert_crp_429(theirs, "HighCostGet3Min", 3, 4)
            assert remaining(theirs, "reads")[0] == 999
        north = await view(api, "vm-north")
        assert north.status_code == 200, north.text
        assert left(north)[0] == "Microsoft.Compute/HighCostGet3Min;2"
        elsewhere = await view(api, "vm-other", sub=SUB2)
        assert elsewhere.status_code == 200, elsewhere.text
        assert left(elsewhere)[0] == "Microsoft.Compute/HighCostGet3Min;2"
        # Arc machines are HybridCompute's, not Compute's.
        arc = await api.client.get(Api.arc_path("arc1"), params={"api-version": "2025-01-13",
                                                                  "$expand": "instanceView"})
        assert arc.status_code == 200 and HEADER not in arc.headers


async def test_run_command_gets_count_when_a_fleet_file_puts_them_in_high_cost_get(
    tmp_path: Path, clock: FakeClock
) -> None:
    groups = {"HighCostGet": {**SMALL,
                              "operations": ["vm_instance_view", "run_command_instance_view"]}}
    async with clocked(_fleet(groups), tmp_path, clock) as api:
        assert (await api.put(Api.vm_path("vm1"), "job", SCRIPT)).status_code == 201
        polls = [await api.get(Api.vm_path("vm1"), "job") for _ in range(2)]
        assert [left(p)[0] for p in polls] == ["Microsoft.Compute/HighCostGet3Min;2",
                                               "Microsoft.Compute/HighCostGet3Min;1"]
        # One budget with the VM's own instance view.
        assert left(await view(api))[0] == "Microsoft.Compute/HighCostGet3Min;0"
        assert_crp_429(await api.get(Api.vm_path("vm1"), "job"), "HighCostGet3Min", 3, 4)
        # Without $expand it is another operation, in no group here.
        plain = await api.get(Api.vm_path("vm1"), "job", expand=False)
        assert plain.status_code == 200 and HEADER not in plain.headers


async def test_run_command_gets_are_not_counted_by_default(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with clocked(_fleet(), tmp_path, clock) as api:
        assert (await api.put(Api.vm_path("vm1"), "job", SCRIPT)).status_code == 201
        for _ in range(6):
            polled = await api.get(Api.vm_path("vm1"), "job")
            assert polled.status_code == 200 and HEADER not in polled.headers


async def test_a_setting_switches_compute_limits_off(tmp_path: Path, clock: FakeClock) -> None:
    async with clocked(_fleet(enabled=False), tmp_path, clock) as api:
        for _ in range(10):
            answer = await view(api)
            assert answer.status_code == 200 and HEADER not in answer.headers
            assert "x-ms-ratelimit-remaining-subscription-reads" in answer.headers


async def test_groups_and_windows_from_the_fleet_file(tmp_path: Path, clock: FakeClock) -> None:
    groups = {"HighCostGet": SMALL,
              "LowCostGet": {"operations": ["vm_get", "run_command_list"], "per_3min": 2,
                             "per_30min": 9}}
    async with clocked(_fleet(groups), tmp_path, clock) as api:
        plain = await api.client.get(Api.vm_path("vm1"), params={"api-version": "2025-04-01"})
        assert left(plain) == ["Microsoft.Compute/LowCostGet3Min;1",
                               "Microsoft.Compute/LowCostGet30Min;8"]
        listed = await api.client.get(Api.vm_path("vm1") + "/runCommands",
                                      params={"api-version": "2025-04-01"})
        assert left(listed)[0] == "Microsoft.Compute/LowCostGet3Min;0"
        over = await api.client.get(Api.vm_path("vm1"), params={"api-version": "2025-04-01"})
        assert over.status_code == 429
        assert json.loads(over.json()["details"][0]["message"])["operationGroup"] == \
            "LowCostGet3Min"
        assert over.json()["details"][0]["target"] == "LowCostGet"
        assert (await view(api)).status_code == 200  # HighCostGet is a budget apart


async def test_throttling_comes_after_the_token_check(tmp_path: Path, clock: FakeClock) -> None:
    async with clocked(_fleet(), tmp_path, clock) as api:
        for _ in range(3):
            refused = await api.client.get(
                Api.vm_path("vm1"), params={"api-version": "2025-04-01", "$expand": "instanceView"},
                headers={"Authorization": "Bearer not-the-token-0123456789"})
            assert refused.status_code == 401
            assert HEADER not in refused.headers
            assert "x-ms-ratelimit-remaining-subscription-reads" not in refused.headers
        # Nothing was spent by the refused calls.
        assert left(await view(api))[0] == "Microsoft.Compute/HighCostGet3Min;2"
