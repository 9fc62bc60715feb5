"""The client's real throttle scope: the principal its token names and the ARM region that
answers it, so that its budget is the one ARM counts (subscription, principal, region); when
either is unknown, the subscription's alone, as before."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx

from core.azure.arm import ArmClient, region_of
from core.azure.auth import StaticToken, principal_of
from core.azure.budget import ThrottleScope
from core.sandbox.access import DEFAULT_PRINCIPAL
from tests.azure.sandboxed import SUB, azure_bed, fleet_of, machine_of

BASE = "https://management.example"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
OID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def test_the_principal_is_the_tokens_object_id_else_its_app_else_its_subject() -> None:
    assert principal_of(jwt({"oid": OID.upper(), "appid": "app", "sub": "subject"})) == OID
    assert principal_of(jwt({"appid": "11111111-2222-3333-4444-555555555555"})) == (
        "11111111-2222-3333-4444-555555555555")
    assert principal_of(jwt({"sub": "subject-1"})) == "subject-1"


def test_an_opaque_or_malformed_token_names_no_principal() -> None:
    assert principal_of("an-opaque-sandbox-token-0123456789") == ""
    assert principal_of("a.b.c") == ""  # not base64 JSON
    assert principal_of(jwt({"name": "no id claims"})) == ""
    assert principal_of(jwt({"oid": 42})) == ""
    assert principal_of(jwt({"oid": "has spaces; and more"})) == ""
    bare = base64.urlsafe_b64encode(b"[1, 2]").decode().rstrip("=")
    assert principal_of(f"x.{bare}.y") == ""


def test_the_region_is_read_from_the_routing_request_id() -> None:
    guid = "5a1b2c3d-0000-4000-8000-000000000001"
    assert region_of({"x-ms-routing-request-id": f"EASTUS2:20240409T093223Z:{guid}"}) == (
        "eastus2")
    for odd in ("", "SANDBOX:abc", "EASTUS2:yesterday:abc", f"EAST US:20240409T093223Z:{guid}"):
        assert region_of({"x-ms-routing-request-id": odd}) == ""
    assert region_of({}) == ""


def routed(region: str | None) -> tuple[list[httpx.Request], Any]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"x-ms-ratelimit-remaining-subscription-reads": "200"}
        if region is not None:
            headers["x-ms-routing-request-id"] = f"{region}:20240409T093223Z:{len(seen)}"
        return httpx.Response(200, json={"id": "x"}, headers=headers)

    return seen, handle


async def test_every_request_is_paced_in_the_scope_of_its_principal_and_region() -> None:
    seen, handle = routed("WESTEUROPE")
    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    arm = ArmClient(BASE, StaticToken(jwt({"oid": OID})), http=http)
    try:
        await asyncio.gather(*(arm.get(VM) for _ in range(20)))
    finally:
        await http.aclose()
    assert len(seen) == 20
    # The first answer said the region before any other request chose its scope.
    assert {s.scope for s in arm.budget.states()} == {ThrottleScope(SUB, OID, "westeurope")}
    assert (arm.principal, arm.region) == (OID, "westeurope")


async def test_without_a_routing_header_or_a_readable_token_the_scope_is_the_subscription(
) -> None:
    _seen, handle = routed(None)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    arm = ArmClient(BASE, StaticToken("opaque-token-0123456789abcdef"), http=http)
    try:
        await asyncio.gather(*(arm.get(VM) for _ in range(5)))
    finally:
        await http.aclose()
    assert {s.scope for s in arm.budget.states()} == {ThrottleScope(SUB)}


async def test_a_probe_without_an_answer_leaves_the_next_request_to_learn_the_region() -> None:
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json={}, headers={
            "x-ms-routing-request-id": "NORTHEUROPE:20240409T093223Z:abc"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    arm = ArmClient(BASE, StaticToken("opaque-token-0123456789abcdef"), http=http)
    arm.retry = type(arm.retry)(backoff=0.01, backoff_cap=0.01)
    try:
        await asyncio.wait_for(arm.get(VM), 10)
    finally:
        await http.aclose()
    assert arm.region == "northeurope"


async def test_the_sandbox_says_its_region_as_arm_does(tmp_path: Path) -> None:
    fleet = fleet_of({"name": "vm1", "kind": "vm", "os": "linux"},
                     throttle={"region": "northeurope"})
    async with azure_bed(fleet, tmp_path) as bed:
        await bed.arm.get(machine_of("vm1").id)
        assert bed.arm.region == "northeurope"
        # The sandbox's token is opaque: no principal, as for any token that does not say.
        assert {s.scope for s in bed.arm.budget.states()} == {
            ThrottleScope(SUB.lower(), "", "northeurope")}


def test_the_sandbox_fleet_source_paces_as_the_sandboxs_own_principal() -> None:
    from core.fleet import sandbox

    source = sandbox.sandbox_source("sandbox")
    try:
        session = next(iter(source.reach.values()))
        assert session.arm.principal == DEFAULT_PRINCIPAL
    finally:
        asyncio.run(source.aclose())
