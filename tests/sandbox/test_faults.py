"""Injected ARM faults, through a real uvicorn server on 127.0.0.1: latency, 500/503 answers,
dropped connections, 429 storms and seeded mixes, fleet-wide and per machine.

Agent faults (``stuck``, ``blob_delay``, ``disconnect_after``) are covered in test_health.py.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sandbox.arm_client import Api, make_fleet, sandbox_api

GRAPH = "/providers/Microsoft.ResourceGraph/resources"


def _fleet(faults: Mapping[str, Any] | None = None, seed: int = 7,
           **machine_faults: Mapping[str, Any]) -> Any:
    """Machines ``calm`` and ``vm-b`` plus one machine per ``machine_faults`` entry."""
    machines: list[dict[str, Any]] = [{"name": "calm", "kind": "vm"},
                                      {"name": "arc-calm", "kind": "arc"}]
    for name, table in machine_faults.items():
        machines.append({"name": name, "kind": "vm", "faults": dict(table)})
    return make_fleet(*machines, faults=dict(faults or {}), seed=seed)


async def get_vm(api: Api, name: str = "calm", suffix: str = "") -> httpx.Response:
    return await api.client.get(Api.vm_path(name) + suffix, params={"api-version": "2025-04-01"})


async def timed(call: Any) -> tuple[float, Any]:
    start = time.monotonic()
    result = await call
    return time.monotonic() - start, result


def assert_fault_error(answer: httpx.Response) -> None:
    """A 500 or 503 with ARM's error body; 503 says when to retry."""
    assert answer.status_code in (500, 503), answer.text
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == {500: "InternalServerError",
                                     503: "ServiceUnavailable"}[answer.status_code]
    assert body["error"]["message"]
    assert answer.headers["x-ms-request-id"]
    if answer.status_code == 503:
        assert int(answer.headers["Retry-After"]) >= 1


async def outcome(api: Api, name: str = "calm") -> int | str:
    """The status code, or ``drop`` when the connection was cut."""
    try:
        return (await get_vm(api, name)).status_code
    except httpx.TransportError:
        return "drop"


# ------------------------------------------------------------------------------- latency


async def test_fleet_wide_latency_delays_every_arm_answer(tmp_path: Path) -> None:
    async with sandbox_api(_fleet({"latency": "300ms"}), tmp_path, served=True) as api:
        elapsed, answer = await timed(get_vm(api))
        assert answer.status_code == 200 and elapsed >= 0.3
        elapsed, answer = await timed(api.client.get(
            Api.arc_path("arc-calm"), params={"api-version": "2025-01-13"}))
        assert answer.status_code == 200 and elapsed >= 0.3
        elapsed, answer = await timed(api.client.post(
            GRAPH, params={"api-version": "2024-04-01"}, json={"query": "Resources"}))
        assert answer.status_code == 200 and elapsed >= 0.3


async def test_machine_latency_delays_only_that_machines_paths(tmp_path: Path) -> None:
    fleet = _fleet(slow={"latency": 0.3}, stalled={"latency": "1h"})
    async with sandbox_api(fleet, tmp_path, served=True) as api:
        for suffix in ("", "/runCommands/nope"):
            elapsed, answer = await timed(get_vm(api, "slow", suffix))
            assert answer.status_code in (200, 404)
            assert elapsed >= 0.3, suffix
        slow_put = await timed(api.put(Api.vm_path("slow"), "cmd",
                                       {"source": {"script": "echo hi"}}))
        assert slow_put[0] >= 0.3 and slow_put[1].status_code == 201
        # The other paths answer while a call to a machine with an hour's latency is held:
        # they do not wait for that machine's latency, and it holds up nobody else's calls.
        stalled = asyncio.create_task(get_vm(api, "stalled"))
        try:
            for call in (get_vm(api), get_vm(api, "calm", "/runCommands"),
                         api.client.post(GRAPH, params={"api-version": "2024-04-01"},
                                         json={"query": "Resources"})):
                answer = await asyncio.wait_for(call, timeout=60)
                assert answer.status_code == 200
            assert not stalled.done()
        finally:
            stalled.cancel()
            await asyncio.gather(stalled, return_exceptions=True)


async def test_without_faults_keep_alive_answers_are_prompt(tmp_path: Path) -> None:
    # Regression: without TCP_NODELAY on accepted connections, Nagle plus delayed ACKs made
    # every keep-alive request through the served sandbox take ~40 ms (Linux's shortest
    # delayed ACK), ~1.5 ms with it. That stall is a floor under every call, so the fastest
    # of many calls shows it whatever the load: a busy machine slows some calls, never all.
    async with sandbox_api(_fleet(), tmp_path, served=True) as api:
        assert (await get_vm(api)).status_code == 200
        fastest = math.inf
        for _ in range(30):
            elapsed, answer = await timed(get_vm(api))
            assert answer.status_code == 200
            fastest = min(fastest, elapsed)
        assert fastest < 0.03


# -------------------------------------------------------------------------------- errors


async def test_error_rate_one_answers_500_or_503_with_arm_bodies(tmp_path: Path) -> None:
    async with sandbox_api(_fleet({"error_rate": 1.0}), tmp_path, served=True) as api:
        statuses = set()
        for _ in range(12):
            answer = await get_vm(api)
            assert_fault_error(answer)
            statuses.add(answer.status_code)
        assert statuses == {500, 503}  # seed 7 rolls both
        put = await api.put(Api.vm_path("calm"), "cmd", {"source": {"script": "echo hi"}})
        assert_fault_error(put)
        machine = api.service.machine("00000000-0000-4000-8000-000000000001", "rg-test", "vm",
                                      "calm")
        assert api.service.run_commands(machine) == {}
        graph = await api.client.post(GRAPH, params={"api-version": "2024-04-01"},
                                      json={"query": "Resources"})
        assert_fault_error(graph)


async def test_authentication_comes_before_faults(tmp_path: Path) -> None:
    # A stranger is turned away before any work, injected faults included: they would tell
    # which machines exist (a machine's own faults) and hold the stranger's connection.
    async with sandbox_api(_fleet({"error_rate": 1.0, "latency": "30s"}), tmp_path,
                           served=True, authorized=False) as api:
        answer = await get_vm(api)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"]["code"] == "AuthenticationFailed"
    async with sandbox_api(_fleet({"error_rate": 1.0}), tmp_path, served=True) as api:
        assert_fault_error(await get_vm(api))


async def test_machine_error_rate_only_hits_that_machine(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(flaky={"error_rate": 1.0}), tmp_path, served=True) as api:
        for _ in range(5):
            assert_fault_error(await get_vm(api, "flaky"))
            assert_fault_error(await get_vm(api, "flaky", "/runCommands"))
            assert (await get_vm(api)).status_code == 200
        missing = await get_vm(api, "not-in-fleet")
        assert missing.status_code == 404


# ---------------------------------------------------------------------------------- drops


async def test_drop_rate_one_cuts_the_connection(tmp_path: Path) -> None:
    async with sandbox_api(_fleet({"drop_rate": 1.0}), tmp_path, served=True) as api:
        for _ in range(3):
            with pytest.raises(httpx.TransportError):
                await get_vm(api)
        with pytest.raises(httpx.TransportError):
            await api.put(Api.vm_path("calm"), "cmd", {"source": {"script": "echo hi"}})


async def test_machine_drops_leave_the_server_answering_others(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(gone={"drop_rate": 1.0}), tmp_path, served=True) as api:
        for _ in range(3):
            with pytest.raises(httpx.TransportError):
                await get_vm(api, "gone")
            assert (await get_vm(api)).status_code == 200


# ---------------------------------------------------------------------------------- storms

STORM = {"every": "1s", "lasting": "500ms"}
"""429s for the first half of every second of the server's loop clock."""


async def at_phase(every: float, low: float) -> float:
    """Waits until the loop clock is ``low`` seconds into a storm period; returns the phase.

    The server runs in this event loop, so its clock is the one read here: a request sent
    right away arrives well inside a window that lasts another 0.15 s or more.
    """
    loop = asyncio.get_running_loop()
    phase = loop.time() % every
    await asyncio.sleep((low - phase) % every)
    return loop.time() % every


def assert_storm(answer: httpx.Response, phase: float, lasting: float) -> None:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == "TooManyRequests"
    retry = int(answer.headers["Retry-After"])
    assert retry >= 1
    assert retry <= max(1, math.ceil(lasting - phase))


async def test_throttle_storm_429s_inside_the_window_only(tmp_path: Path) -> None:
    async with sandbox_api(_fleet({"throttle_storm": STORM}), tmp_path, served=True) as api:
        phase = await at_phase(1.0, 0.05)
        assert_storm(await get_vm(api), phase, 0.5)
        graph = await api.client.post(GRAPH, params={"api-version": "2024-04-01"},
                                      json={"query": "Resources"})
        assert graph.status_code == 429
        await at_phase(1.0, 0.6)
        assert (await get_vm(api)).status_code == 200
        assert (await api.client.post(GRAPH, params={"api-version": "2024-04-01"},
                                      json={"query": "Resources"})).status_code == 200


async def test_machine_storm_throttles_only_that_machine(tmp_path: Path) -> None:
    fleet = _fleet(stormy={"throttle_storm": STORM})
    async with sandbox_api(fleet, tmp_path, served=True) as api:
        phase = await at_phase(1.0, 0.05)
        assert_storm(await get_vm(api, "stormy"), phase, 0.5)
        assert (await get_vm(api)).status_code == 200
        await at_phase(1.0, 0.6)
        assert (await get_vm(api, "stormy")).status_code == 200


async def test_a_long_storm_with_a_short_lull(tmp_path: Path) -> None:
    # 950 ms of every second throttled: a call at phase 0.1 s is told to come back in 1 s.
    storm = {"every": "1s", "lasting": "950ms"}
    async with sandbox_api(_fleet({"throttle_storm": storm}), tmp_path, served=True) as api:
        phase = await at_phase(1.0, 0.1)
        answer = await get_vm(api)
        assert_storm(answer, phase, 0.95)
        assert answer.headers["Retry-After"] == "1"


# ----------------------------------------------------------------------------------- mixes


async def _outcomes(tmp_path: Path, seed: int, n: int = 16) -> list[int | str]:
    fleet = _fleet({"error_rate": 0.4, "drop_rate": 0.3}, seed=seed)
    async with sandbox_api(fleet, tmp_path, served=True) as api:
        return [await outcome(api) for _ in range(n)]


async def test_rates_between_zero_and_one_mix_and_repeat_with_the_seed(tmp_path: Path) -> None:
    first = await _outcomes(tmp_path / "a", seed=11)
    second = await _outcomes(tmp_path / "b", seed=11)
    assert first == second
    assert {200, "drop"} <= set(first) and set(first) & {500, 503}
    assert set(first) <= {200, 500, 503, "drop"}
    other = await _outcomes(tmp_path / "c", seed=12)
    assert other != first


async def test_a_machine_mix_leaves_other_machines_alone(tmp_path: Path) -> None:
    fleet = _fleet(seed=3, mixed={"error_rate": 0.5})
    async with sandbox_api(fleet, tmp_path, served=True) as api:
        results = []
        for _ in range(12):
            results.append(await outcome(api, "mixed"))
            assert await outcome(api) == 200
    assert {200} < set(results) <= {200, 500, 503}


async def test_delete_errors_fail_a_machines_first_deletes_then_delete(tmp_path: Path) -> None:
    fleet = make_fleet({"name": "sticky", "kind": "vm", "faults": {"delete_errors": 2}},
                       {"name": "calm", "kind": "vm"})
    async with sandbox_api(fleet, tmp_path) as api:
        for name in ("sticky", "calm"):
            put = await api.put(Api.vm_path(name), "fleetrun-x", {"source": {"script": "true"}})
            assert put.status_code in (200, 201), put.text
        assert (await api.delete(Api.vm_path("calm"), "fleetrun-x")).status_code in (200, 202)
        for _ in range(2):
            answer = await api.delete(Api.vm_path("sticky"), "fleetrun-x")
            assert answer.status_code == 500, answer.text
            assert answer.json()["error"]["code"] == "InternalServerError"
            # A failed DELETE leaves the run command where it was, listed and readable.
            listed = await api.client.get(f"{Api.vm_path('sticky')}/runCommands",
                                          params={"api-version": "2025-04-01"})
            assert [c["name"] for c in listed.json()["value"]] == ["fleetrun-x"]
        assert (await api.delete(Api.vm_path("sticky"), "fleetrun-x")).status_code in (200, 202)
        assert (await api.get(Api.vm_path("sticky"), "fleetrun-x")).status_code == 404
