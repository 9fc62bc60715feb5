"""The ARM client: versions, tokens, retries, 429s, errors, long-running operations, budget."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.azure.api_versions import ApiVersions
from core.azure.arm import ArmClient, ArmError, RetryPolicy
from core.azure.auth import AuthError, IdentityTokens, StaticToken
from core.azure.budget import ArmBudget, BucketLimit, BudgetLimits
from tests.azure.sandboxed import RG, SUB, azure_bed, fleet_of

BASE = "https://management.example"
VM = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
ARC = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.HybridCompute/machines/m1"
QUICK = RetryPolicy(attempts=3, backoff=0.01, backoff_cap=0.02, lro_poll_floor=0.01,
                    throttle_attempts=3)

Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler, **options: Any) -> ArmClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ArmClient(BASE, StaticToken("tok"), http=http, retry=QUICK, **options)


def answers(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler giving ``responses`` in turn (an exception is raised), and what it saw."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handle, seen


def arm_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}},
                          headers=headers)


# ------------------------------------------------------------------ versions, tokens


async def test_each_provider_gets_its_api_version_and_every_call_a_bearer_token() -> None:
    handle, seen = answers(httpx.Response(200, json={}), httpx.Response(200, json={}),
                           httpx.Response(200, json={}))
    arm = client(handle, api_versions=ApiVersions(compute="2026-04-01"))
    await arm.get(f"{VM}/runCommands/x", {"$expand": "instanceView"})
    await arm.get(f"{ARC}/runCommands/x")
    await arm.request("POST", "/providers/Microsoft.ResourceGraph/resources", json_body={},
                      budgeted=False)
    versions = [r.url.params["api-version"] for r in seen]
    assert versions == ["2026-04-01", "2025-01-13", "2024-04-01"]
    assert seen[0].url.params["$expand"] == "instanceView"
    assert all(r.headers["Authorization"] == "Bearer tok" for r in seen)


async def test_the_token_never_goes_to_another_host() -> None:
    handle, seen = answers()
    arm = client(handle)
    with pytest.raises(ArmError) as caught:
        await arm.request("GET", "https://attacker.example/subscriptions/x/operations/1")
    assert caught.value.code == "UntrustedUrl"
    assert seen == []


async def test_identity_tokens_are_cached_per_scope_and_refreshed_before_expiry() -> None:
    class Credential:
        def __init__(self) -> None:
            self.calls: list[str] = []
            self.lifetime = 3600.0

        def get_token(self, scope: str) -> Any:
            import time
            self.calls.append(scope)

            class Access:
                token = f"t{len(self.calls)}"
                expires_on = time.time() + self.lifetime
            return Access()

    credential = Credential()
    tokens = IdentityTokens(credential)
    assert await tokens.token("a") == "t1"
    assert await tokens.token("a") == "t1"
    assert await tokens.token("b") == "t2"
    credential.lifetime = 60  # tokens inside the refresh margin are replaced on every call
    short_lived = IdentityTokens(credential)
    assert await short_lived.token("a") == "t3"
    assert await short_lived.token("a") == "t4"


async def test_no_credential_is_an_auth_error_that_says_what_to_do() -> None:
    class Broken:
        def get_token(self, scope: str) -> Any:
            raise RuntimeError("DefaultAzureCredential failed to retrieve a token\nmore")

    with pytest.raises(AuthError) as caught:
        await IdentityTokens(Broken()).token("https://management.azure.com/.default")
    assert "az login" in str(caught.value)
    assert "failed to retrieve a token" in str(caught.value)
    assert "more" not in str(caught.value)


# ------------------------------------------------------------------ retries, errors


async def test_5xx_and_dropped_connections_are_retried_for_idempotent_calls() -> None:
    handle, seen = answers(arm_error(503, "ServiceUnavailable", "busy"),
                           httpx.ConnectError("reset"), httpx.Response(200, json={"ok": 1}))
    assert await client(handle).get(VM) == {"ok": 1}
    assert len(seen) == 3


async def test_a_post_is_not_retried_on_5xx_unless_declared_idempotent() -> None:
    handle, seen = answers(arm_error(500, "InternalServerError", "boom"))
    with pytest.raises(ArmError) as caught:
        await client(handle).request("POST", f"{VM}/runCommand", json_body={})
    assert (caught.value.status, caught.value.code) == (500, "InternalServerError")
    assert len(seen) == 1


async def test_retries_end_with_the_last_error() -> None:
    handle, seen = answers(*(arm_error(503, "ServiceUnavailable", "busy") for _ in range(3)))
    with pytest.raises(ArmError) as caught:
        await client(handle).get(VM)
    assert caught.value.code == "ServiceUnavailable"
    assert len(seen) == QUICK.attempts


async def test_a_429_waits_retry_after_and_tells_the_budget() -> None:
    handle, seen = answers(arm_error(429, "TooManyRequests", "slow down", **{"Retry-After": "0"}),
                           httpx.Response(200, json={}))
    arm = client(handle)
    await arm.get(VM)
    assert len(seen) == 2
    assert arm.budget.throttled_count == 1


@pytest.mark.parametrize(("response", "code", "message"), [
    (arm_error(404, "ResourceNotFound", "no such VM"), "ResourceNotFound", "no such VM"),
    (httpx.Response(429, json={"code": "OperationNotAllowed", "message": "CRP says no"},
                    headers={"Retry-After": "0"}), "OperationNotAllowed", "CRP says no"),
    (httpx.Response(502, text="<html>bad gateway</html>"), "Http502", "<html>bad gateway</html>"),
])
async def test_errors_carry_arms_code_and_message_whatever_the_body(
    response: httpx.Response, code: str, message: str
) -> None:
    handle, _ = answers(*([response] * 5))
    with pytest.raises(ArmError) as caught:
        await client(handle).request("POST", f"{VM}/x", json_body={})
    assert caught.value.code == code
    assert message in caught.value.message
    assert "/virtualMachines/vm1/x" in str(caught.value)


async def test_a_body_that_is_not_json_is_an_invalid_response() -> None:
    handle, _ = answers(httpx.Response(200, text="not json"))
    with pytest.raises(ArmError) as caught:
        await client(handle).get(VM)
    assert caught.value.code == "InvalidResponse"


# ------------------------------------------------------------------ long-running operations


async def test_wait_follows_azure_asyncoperation_to_success() -> None:
    status = f"{BASE}/subscriptions/{SUB}/providers/Microsoft.Compute/locations/w/operations/1"
    handle, seen = answers(httpx.Response(200, json={"status": "InProgress"}),
                           httpx.Response(200, json={"status": "Succeeded", "name": "1"}))
    arm = client(handle)
    started = httpx.Response(201, json={}, headers={"Azure-AsyncOperation": status,
                                                    "Retry-After": "0"})
    assert (await arm.wait(started))["status"] == "Succeeded"
    assert [str(r.url) for r in seen] == [status, status]


async def test_a_failed_operation_raises_its_error() -> None:
    status = f"{BASE}/operations/2"
    handle, _ = answers(httpx.Response(200, json={
        "status": "Failed", "error": {"code": "VMAgentStatusCommunicationError",
                                      "message": "agent not ready"}}))
    started = httpx.Response(201, headers={"Azure-AsyncOperation": status, "Retry-After": "0"})
    with pytest.raises(ArmError) as caught:
        await client(handle).wait(started)
    assert caught.value.code == "VMAgentStatusCommunicationError"


async def test_wait_follows_location_until_it_stops_answering_202() -> None:
    location = f"{BASE}/operations/3?monitor=true"
    handle, seen = answers(httpx.Response(202, headers={"Retry-After": "0"}),
                           httpx.Response(204))
    started = httpx.Response(202, headers={"Location": location, "Retry-After": "0"})
    assert await client(handle).wait(started) is None
    assert len(seen) == 2


async def test_wait_gives_up_within_its_limit() -> None:
    handle, _ = answers(*[httpx.Response(202, headers={"Retry-After": "0"})] * 100)
    started = httpx.Response(202, headers={"Location": f"{BASE}/operations/4"})
    with pytest.raises(ArmError) as caught:
        await client(handle).wait(started, within=0.05)
    assert caught.value.code == "OperationTimedOut"


async def test_deleting_a_running_command_on_the_sandbox_is_followed_to_its_end(
    tmp_path: Path
) -> None:
    fleet = fleet_of({"name": "vm1", "kind": "vm", "os": "linux"})
    async with azure_bed(fleet, tmp_path) as bed:
        path = f"{VM}/runCommands/long"
        body = {"location": "westeurope", "properties": {"source": {"script": "sleep 30"},
                                                           "asyncExecution": True}}
        await bed.arm.request("PUT", path, json_body=body)
        for _ in range(100):
            view = await bed.arm.get(path, {"$expand": "instanceView"})
            if view["properties"].get("instanceView", {}).get("executionState") == "Running":
                break
            await asyncio.sleep(0.05)
        answer = await bed.arm.request("DELETE", path)
        await bed.arm.wait(answer, within=10)
        with pytest.raises(ArmError) as caught:
            await bed.arm.get(path)
        assert caught.value.status == 404
        assert bed.arm.sent["deletes"] == 1


# ------------------------------------------------------------------ the budget
# (the budget's own scheduling is in tests/azure/test_budget.py)


async def test_the_client_settles_every_token_with_the_answers_headers() -> None:
    remaining = {"x-ms-ratelimit-remaining-subscription-reads": "3"}
    handle, seen = answers(*(httpx.Response(200, json={}, headers=remaining)
                             for _ in range(4)))
    budget = ArmBudget(BudgetLimits(reads=BucketLimit(100, 0.001), reserve=0.0))
    arm = client(handle, budget=budget)
    for _ in range(3):
        await arm.get(VM)
    blocked = asyncio.create_task(arm.get(VM))
    await asyncio.sleep(0.05)
    # The server said 3 left after each call; the client trusts its last word (3), so it
    # keeps going, and never counts a call twice.
    assert blocked.done() and len(seen) == 4
    (state,) = [s for s in budget.states() if s.kind == "reads"]
    assert state.in_flight == 0 and state.remaining == 3


def test_kind_of_counts_like_arm() -> None:
    from core.azure.budget import kind_of

    assert [kind_of(m) for m in ("GET", "HEAD", "PUT", "PATCH", "POST", "DELETE")] == [
        "reads", "reads", "writes", "writes", "writes", "deletes"]
