"""ARM's token buckets and Resource Graph's quota window, as clients see them over HTTP.

The buckets are small (reads 5 at 2/s, writes 3 at 1/s, deletes 2 at 0.25/s) and run on a
clock the test moves, so refill is exact and nothing sleeps; one test uses the real clock.
Ground truth: ``azure-run-command.md`` sections 6.4 and 7.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.access import Access, new_token
from core.sandbox.app import SandboxApp
from core.sandbox.fleet import FleetSpec
from core.sandbox.service import SandboxService
from core.sandbox.throttle import ArmThrottle, GraphQuota
from tests.sandbox.arm_client import IN_PROCESS, IN_PROCESS_HOST, SUB, Api, make_fleet, sandbox_api

SUB2 = "00000000-0000-4000-8000-000000000002"
GRAPH = "/providers/Microsoft.ResourceGraph/resources"
LIMITS = {
    "reads": {"capacity": 5, "refill_per_second": 2},
    "writes": {"capacity": 3, "refill_per_second": 1},
    "deletes": {"capacity": 2, "refill_per_second": 0.25},
    "graph_queries": 3,
    "graph_window": "5s",
}
SCRIPT = {"source": {"script": "echo hi"}}
HHMMSS = re.compile(r"^\d{2}:\d{2}:\d{2}$")


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _fleet(**throttle: Any) -> FleetSpec:
    simulated = {"executor": "simulated", "simulate": {"duration": "50ms"}}
    return make_fleet(
        {"name": "vm1", "kind": "vm", **simulated},
        {"name": "arc1", "kind": "arc", **simulated},
        {"name": "vm2", "kind": "vm", "subscription": SUB2, **simulated},
        throttle={**LIMITS, **throttle},
    )


@asynccontextmanager
async def clocked_api(
    fleet: FleetSpec, root: Path, clock: FakeClock
) -> AsyncIterator[Api]:
    """An in-process sandbox whose throttle and graph quota run on ``clock``."""
    service = SandboxService(fleet, root=root)
    token = new_token()
    app = SandboxApp(service, Access(token, frozenset({IN_PROCESS_HOST})))
    app.arm.throttle = ArmThrottle(fleet.throttle, clock=clock)
    app.arm.graph_quota = GraphQuota(fleet.throttle, clock=clock)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            yield Api(service, client, IN_PROCESS, app)
    finally:
        await service.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def api(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Api]:
    async with clocked_api(_fleet(), tmp_path, clock) as api:
        yield api


def remaining(answer: httpx.Response, kind: str) -> tuple[int, int]:
    """The (subscription, global) remaining counts an answer reports for ``kind``."""
    regional = answer.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"]
    global_ = answer.headers[f"x-ms-ratelimit-remaining-subscription-global-{kind}"]
    return int(regional), int(global_)


def assert_throttled(answer: httpx.Response, kind: str, subscription: str = SUB) -> int:
    """A 429 from an empty bucket; returns its Retry-After."""
    assert answer.status_code == 429, answer.text
    assert answer.json() == {"error": {"code": "SubscriptionRequestsThrottled",
                                       "message": answer.json()["error"]["message"]}}
    message = answer.json()["error"]["message"]
    assert subscription in message and f"'{kind[:-1]}'" in message
    assert re.fullmatch(r"[1-9]\d*", answer.headers["Retry-After"]), answer.headers
    assert f"'{answer.headers['Retry-After']}' seconds" in message
    assert remaining(answer, kind)[0] == 0
    assert answer.headers["x-ms-request-id"]
    return int(answer.headers["Retry-After"])


async def read(api: Api, machine: str = "vm1", sub: str = SUB) -> httpx.Response:
    return await api.client.get(Api.vm_path(machine, sub=sub),
                                params={"api-version": "2025-04-01"})


async def write(api: Api, name: str, machine: str = "vm1", sub: str = SUB) -> httpx.Response:
    return await api.put(Api.vm_path(machine, sub=sub), name, SCRIPT)


# ------------------------------------------------------------------------------ headers


async def test_every_answer_reports_the_bucket_it_drew_from_decreasing(api: Api) -> None:
    reads = [remaining(await read(api), "reads") for _ in range(5)]
    assert [r for r, _ in reads] == [4, 3, 2, 1, 0]
    globals_ = [g for _, g in reads]
    assert globals_ == sorted(globals_, reverse=True) and len(set(globals_)) == 5
    assert all(g >= r for r, g in reads)

    writes = []
    for name in ("a", "b", "c"):
        answer = await write(api, name)
        assert answer.status_code == 201, answer.text
        assert "x-ms-ratelimit-remaining-subscription-reads" not in answer.headers
        writes.append(remaining(answer, "writes"))
    assert [r for r, _ in writes] == [2, 1, 0]
    assert [g for _, g in writes] == sorted((g for _, g in writes), reverse=True)

    deletes = []
    for name in ("a", "b"):
        answer = await api.delete(Api.vm_path("vm1"), name)
        assert answer.status_code in (200, 202, 204), answer.text
        assert "x-ms-ratelimit-remaining-subscription-writes" not in answer.headers
        deletes.append(remaining(answer, "deletes"))
    assert [r for r, _ in deletes] == [1, 0]


async def test_error_answers_are_charged_and_carry_the_headers_too(api: Api) -> None:
    missing = await read(api, "no-such-vm")
    assert missing.status_code == 404
    assert remaining(missing, "reads")[0] == 4
    arc = await api.client.get(Api.arc_path("arc1") + "/runCommands/none",
                               params={"api-version": "2025-01-13"})
    assert arc.status_code == 404
    assert remaining(arc, "reads")[0] == 3


# ----------------------------------------------------------------------------- empty buckets


async def test_an_empty_read_bucket_answers_429_with_retry_after(api: Api) -> None:
    for _ in range(5):
        assert (await read(api)).status_code == 200
    retry = assert_throttled(await read(api), "reads")
    assert retry == 1  # one token at 2/s: half a second, rounded up to whole seconds
    # Arc and Compute reads in one subscription share the bucket.
    arc = await api.client.get(Api.arc_path("arc1"), params={"api-version": "2025-01-13"})
    assert_throttled(arc, "reads")


async def test_an_empty_write_bucket_answers_429_and_nothing_is_created(api: Api) -> None:
    for name in ("a", "b", "c"):
        assert (await write(api, name)).status_code == 201
    assert_throttled(await write(api, "d"), "writes")
    assert "d" not in api.service.run_commands(
        api.service.machine(SUB, "rg-test", "vm", "vm1"))
    # PATCH is a write as well.
    patch = await api.client.patch(Api.vm_path("vm1") + "/runCommands/a",
                                   params={"api-version": "2025-04-01"},
                                   json={"properties": {"timeoutInSeconds": 5}})
    assert_throttled(patch, "writes")


async def test_retry_after_reflects_a_slow_refill(api: Api) -> None:
    for name in ("a", "b"):
        assert (await write(api, name)).status_code == 201
    for name in ("a", "b"):
        assert (await api.delete(Api.vm_path("vm1"), name)).status_code in (200, 202, 204)
    # Deletes refill at 0.25/s: the next token is 4 s away.
    assert assert_throttled(await api.delete(Api.vm_path("vm1"), "a"), "deletes") == 4


async def test_buckets_are_per_subscription(api: Api) -> None:
    for name in ("a", "b", "c"):
        assert (await write(api, name)).status_code == 201
    assert_throttled(await write(api, "d"), "writes")
    # The subscription id is matched case-insensitively: same bucket.
    assert_throttled(await write(api, "d", sub=SUB.upper()), "writes", SUB.upper())
    other = await write(api, "d", machine="vm2", sub=SUB2)
    assert other.status_code == 201, other.text
    assert remaining(other, "writes")[0] == 2


async def test_buckets_are_per_kind(api: Api) -> None:
    for name in ("a", "b", "c"):
        assert (await write(api, name)).status_code == 201
    assert_throttled(await write(api, "d"), "writes")
    got = await read(api)
    assert got.status_code == 200 and remaining(got, "reads")[0] == 4
    deleted = await api.delete(Api.vm_path("vm1"), "a")
    assert deleted.status_code in (200, 202, 204)
    assert remaining(deleted, "deletes")[0] == 1
    for _ in range(4):
        assert (await read(api)).status_code == 200
    assert_throttled(await read(api), "reads")
    deleted = await api.delete(Api.vm_path("vm1"), "b")
    assert deleted.status_code in (200, 202, 204)


# ------------------------------------------------------------------------------- refill


async def test_tokens_come_back_after_retry_after(api: Api, clock: FakeClock) -> None:
    for name in ("a", "b", "c"):
        assert (await write(api, name)).status_code == 201
    retry = assert_throttled(await write(api, "d"), "writes")
    clock.advance(retry)
    answer = await write(api, "d")
    assert answer.status_code == 201, answer.text
    assert remaining(answer, "writes")[0] == 0
    assert_throttled(await write(api, "e"), "writes")


async def test_refill_is_continuous_and_capped_at_capacity(api: Api, clock: FakeClock) -> None:
    for _ in range(5):
        assert (await read(api)).status_code == 200
    assert_throttled(await read(api), "reads")
    clock.advance(0.4)  # 0.8 of a token at 2/s: still nothing to spend
    assert_throttled(await read(api), "reads")
    clock.advance(0.1)
    assert remaining(await read(api), "reads")[0] == 0
    clock.advance(1.5)  # three tokens
    assert remaining(await read(api), "reads")[0] == 2
    clock.advance(3600)
    assert remaining(await read(api), "reads")[0] == 4  # capacity 5, never more


async def test_refill_on_the_real_clock(tmp_path: Path) -> None:
    fleet = _fleet(reads={"capacity": 1, "refill_per_second": 4})
    async with sandbox_api(fleet, tmp_path) as api:
        assert (await read(api)).status_code == 200
        retry = assert_throttled(await read(api), "reads")
        assert retry == 1
        await asyncio.sleep(retry)
        answer = await read(api)
        assert answer.status_code == 200, answer.text


# ------------------------------------------------------------------------- Resource Graph


async def graph(api: Api) -> httpx.Response:
    return await api.client.post(GRAPH, params={"api-version": "2024-04-01"},
                                 json={"query": "Resources | project id"})


def quota(answer: httpx.Response) -> tuple[int, str]:
    left = int(answer.headers["x-ms-user-quota-remaining"])
    resets = answer.headers["x-ms-user-quota-resets-after"]
    assert HHMMSS.match(resets), resets
    return left, resets


async def test_resource_graph_reports_its_quota_and_429s_past_it(
    api: Api, clock: FakeClock
) -> None:
    first = await graph(api)
    assert first.status_code == 200
    assert quota(first) == (2, "00:00:05")
    clock.advance(1.2)
    assert quota(await graph(api)) == (1, "00:00:03")
    assert quota(await graph(api)) == (0, "00:00:03")
    over = await graph(api)
    assert over.status_code == 429, over.text
    assert set(over.json()) == {"error"}
    assert {"code", "message"} <= set(over.json()["error"])
    assert quota(over) == (0, "00:00:03")
    assert re.fullmatch(r"[1-9]\d*", over.headers["Retry-After"])
    assert int(over.headers["Retry-After"]) == 4  # 3.8 s left, rounded up
    # Graph queries do not draw on the ARM read bucket.
    assert "x-ms-ratelimit-remaining-subscription-reads" not in over.headers
    assert (await read(api)).status_code == 200

    # The quota is per user: another principal has its own, with its own window. The
    # sandbox lets one principal in (its token), so the other is charged at the quota.
    assert api.app is not None
    allowed, other = api.app.arm.graph_quota.charge("Bearer someone-else")
    assert allowed
    assert (other["x-ms-user-quota-remaining"], other["x-ms-user-quota-resets-after"]) == (
        "2", "00:00:05")

    clock.advance(int(over.headers["Retry-After"]))
    again = await graph(api)
    assert again.status_code == 200, again.text
    assert quota(again) == (2, "00:00:05")


async def test_resource_graph_reset_time_counts_hours_and_minutes(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with clocked_api(_fleet(graph_window="3725s"), tmp_path, clock) as api:
        assert quota(await graph(api))[1] == "01:02:05"
        clock.advance(3600)
        assert quota(await graph(api))[1] == "00:02:05"


@pytest.mark.parametrize("limits", [{"graph_queries": 1}])
async def test_resource_graph_quota_from_the_fleet_file(
    tmp_path: Path, clock: FakeClock, limits: Mapping[str, Any]
) -> None:
    async with clocked_api(_fleet(**limits), tmp_path, clock) as api:
        assert quota(await graph(api))[0] == 0
        assert (await graph(api)).status_code == 429
