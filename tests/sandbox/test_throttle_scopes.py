"""ARM's throttle scopes: buckets per (subscription, principal, region), a global one shared.

Two engineers on one service principal share its buckets and see each other's spending in
the headers; a second principal has buckets of its own and meets the first only in the
subscription-global bucket, whose header reports what it really has left. Small buckets
(reads 5 at 2/s) on a clock the test moves. Ground truth: ``azure-run-command.md`` 7.1-7.2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.access import Access, new_token
from core.sandbox.app import SandboxApp
from core.sandbox.fleet import FleetSpec
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService
from core.sandbox.throttle import ArmThrottle, GraphQuota
from tests.sandbox.arm_client import IN_PROCESS, IN_PROCESS_HOST, SUB, Api, make_fleet
from tests.sandbox.test_throttling import GRAPH, FakeClock, remaining

ENGINEER_B = "engineer-b"
B_TOKEN = "engineer-b-token-0123456789abcdef"
READS = {"capacity": 5, "refill_per_second": 2}


def _fleet(**throttle: Any) -> FleetSpec:
    return make_fleet(
        {"name": "vm1", "kind": "vm", "executor": "simulated"},
        throttle={"reads": READS, "graph_queries": 2, **throttle},
        principals=[{"name": ENGINEER_B, "token": B_TOKEN}],
    )


@dataclass
class Callers:
    app: SandboxApp
    first: httpx.AsyncClient
    """An engineer presenting the sandbox's own token (its one service principal)."""
    second: httpx.AsyncClient
    """Another engineer with the same token: a second fleetrun on the same jump box."""
    other: httpx.AsyncClient
    """An engineer with a principal of their own (the fleet file's ``engineer-b``)."""


@asynccontextmanager
async def callers(fleet: FleetSpec, root: Path, clock: FakeClock) -> AsyncIterator[Callers]:
    service = SandboxService(fleet, root=root)
    token = new_token()
    access = Access(token, frozenset({IN_PROCESS_HOST}),
                    {p.name: p.token for p in fleet.principals})
    app = SandboxApp(service, access)
    app.arm.throttle = ArmThrottle(fleet.throttle, clock=clock)
    app.arm.graph_quota = GraphQuota(fleet.throttle, clock=clock)

    def client(bearer: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS,
                                 headers={"Authorization": f"Bearer {bearer}"})

    try:
        async with client(token) as first, client(token) as second, client(B_TOKEN) as other:
            yield Callers(app, first, second, other)
    finally:
        await service.aclose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def read(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get(Api.vm_path("vm1"), params={"api-version": "2025-04-01"})


async def test_two_clients_of_one_principal_share_its_buckets(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with callers(_fleet(), tmp_path, clock) as c:
        assert [remaining(await read(c.first), "reads")[0] for _ in range(2)] == [4, 3]
        # The second engineer's first read already shows the first one's spending.
        assert remaining(await read(c.second), "reads")[0] == 2
        assert remaining(await read(c.first), "reads")[0] == 1
        assert remaining(await read(c.second), "reads")[0] == 0
        for client in (c.first, c.second):
            throttled = await read(client)
            assert throttled.status_code == 429, throttled.text
            assert "actor 'sandbox'" in throttled.json()["error"]["message"]


async def test_another_principal_has_its_own_bucket_and_shares_the_global_one(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with callers(_fleet(), tmp_path, clock) as c:
        spent = [remaining(await read(c.first), "reads") for _ in range(5)]
        # The global bucket is 15x the scope's (75 reads) and reports what it has left.
        assert spent == [(4, 74), (3, 73), (2, 72), (1, 71), (0, 70)]
        assert (await read(c.first)).status_code == 429
        theirs = await read(c.other)
        assert theirs.status_code == 200, theirs.text
        # Its own scope is full; the global bucket is down by both principals' reads.
        assert remaining(theirs, "reads") == (4, 69)
        # Writes are a bucket apart, for each principal.
        put = await c.other.put(Api.vm_path("vm1") + "/runCommands/b",
                                params={"api-version": "2025-04-01"},
                                json={"location": "westeurope",
                                      "properties": {"source": {"script": "echo b"}}})
        assert put.status_code == 201, put.text
        assert remaining(put, "writes") == (199, 2999)


async def test_an_empty_global_bucket_throttles_every_principal(
    tmp_path: Path, clock: FakeClock
) -> None:
    # global_factor 1: the subscription's global bucket holds as much as one scope's.
    async with callers(_fleet(global_factor=1), tmp_path, clock) as c:
        for _ in range(3):
            assert (await read(c.first)).status_code == 200
        assert remaining(await read(c.other), "reads") == (4, 1)
        assert remaining(await read(c.other), "reads") == (3, 0)
        for client in (c.other, c.first):
            refused = await read(client)
            assert refused.status_code == 429, refused.text
            message = refused.json()["error"]["message"]
            assert refused.json()["error"]["code"] == "SubscriptionRequestsThrottled"
            assert "global limit" in message and SUB in message
            assert refused.headers["Retry-After"] == "1"  # one token at 2/s
            # The scope still has tokens; the global header says where the limit is.
            assert remaining(refused, "reads")[1] == 0 and remaining(refused, "reads")[0] > 0
        clock.advance(0.5)  # one global token back
        answer = await read(c.first)
        assert answer.status_code == 200, answer.text
        # 2 left after its 3 reads, +1 refilled, -1 spent: the refused read took nothing.
        assert remaining(answer, "reads") == (2, 0)


async def test_resource_graph_quota_is_per_principal(tmp_path: Path, clock: FakeClock) -> None:
    async with callers(_fleet(), tmp_path, clock) as c:
        body = {"query": "Resources | project id"}
        params = {"api-version": "2024-04-01"}
        for _ in range(2):
            assert (await c.first.post(GRAPH, params=params, json=body)).status_code == 200
        assert (await c.second.post(GRAPH, params=params, json=body)).status_code == 429
        theirs = await c.other.post(GRAPH, params=params, json=body)
        assert theirs.status_code == 200, theirs.text
        assert theirs.headers["x-ms-user-quota-remaining"] == "1"


async def test_a_fleet_principal_runs_commands_and_strangers_are_still_refused(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with callers(_fleet(), tmp_path, clock) as c:
        stranger = await c.other.get(Api.vm_path("vm1"), params={"api-version": "2025-04-01"},
                                     headers={"Authorization": f"Bearer {B_TOKEN}x"})
        assert stranger.status_code == 401
        assert "x-ms-ratelimit-remaining-subscription-reads" not in stranger.headers
        # The refused call spent nothing of anyone's budget.
        assert remaining(await read(c.other), "reads") == (4, 74)


async def test_a_served_sandbox_refuses_a_principal_holding_its_own_token(
    tmp_path: Path
) -> None:
    service = SandboxService(_fleet(), root=tmp_path)
    try:
        with pytest.raises(ValueError, match="'engineer-b'") as refused:
            SandboxServer(service, token=B_TOKEN)
        assert B_TOKEN not in str(refused.value)
        server = SandboxServer(service)
        base = await server.start()
        try:
            async with httpx.AsyncClient(base_url=base, trust_env=False,
                                         headers={"Authorization": f"Bearer {B_TOKEN}"}) as b:
                answer = await read(b)
                assert answer.status_code == 200, answer.text
                assert remaining(answer, "reads") == (4, 74)
        finally:
            await server.stop()
    finally:
        await service.aclose()
