"""ARM's conventions in the sandbox: ids, auth, case-insensitive paths, api-versions, 404s,
error bodies, PATCH and ``$expand`` rules, long-running operations and Resource Graph paging.

Ground truth: ``azure-run-command.md`` sections 1, 2.4-2.5, 6.3 and 10.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.fleet import default_fleet
from tests.sandbox.arm_client import RG, SUB, Api, make_fleet, sandbox_api

VM = "Web-VM1"
"""Mixed case on purpose: ARM matches names case-insensitively and keeps their spelling."""
ARC_MACHINE = "Arc-Srv1"
COMPUTE_VERSIONS = ("2024-11-01", "2025-04-01", "2025-11-01", "2026-03-01", "2026-04-01")
ARC_VERSIONS = ("2024-07-10", "2025-01-13", "2026-07-15", "2026-09-01")
GRAPH = "/providers/Microsoft.ResourceGraph/resources"
GRAPH_VERSION = "2024-04-01"
SCRIPT = {"source": {"script": "echo hello"}}


def _fleet() -> Any:
    simulated = {"executor": "simulated", "simulate": {"duration": "0.3s"}}
    return make_fleet(
        {"name": VM, "kind": "vm", **simulated},
        {"name": ARC_MACHINE, "kind": "arc", **simulated},
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with sandbox_api(_fleet(), tmp_path) as api:
        yield api


def arm_error(response: httpx.Response, status: int, code: str) -> str:
    """Check an ARM error answer (``{"error": {"code", "message"}}``); returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message"} <= set(error), body
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"].strip()
    message: str = error["message"]
    return message


def vm_url(name: str = VM) -> str:
    return Api.vm_path(name)


def arc_url(name: str = ARC_MACHINE) -> str:
    return Api.arc_path(name)


# --------------------------------------------------------------------------- request ids


async def test_every_answer_has_a_fresh_request_id_and_a_correlation_id(api: Api) -> None:
    answers = [
        await api.client.get(vm_url(), params={"api-version": "2025-04-01"}),
        await api.client.get(vm_url("nope"), params={"api-version": "2025-04-01"}),
        await api.client.get(vm_url(), params={"api-version": "1999-01-01"}),
        await api.client.get(vm_url(), params={"api-version": "2025-04-01"},
                             headers={"Authorization": "Basic eDp5"}),
        await api.client.get("/subscriptions/x/nothing/here", params={"api-version": "1"}),
        await api.put(vm_url(), "cmd", SCRIPT),
        await api.client.post(GRAPH, params={"api-version": GRAPH_VERSION},
                              json={"query": "Resources | project id"}),
    ]
    assert [a.status_code for a in answers] == [200, 404, 400, 401, 404, 201, 200]
    ids = [a.headers["x-ms-request-id"] for a in answers]
    assert all(ids) and len(set(ids)) == len(ids)
    for answer in answers:
        # Without a client correlation id, ARM makes one up; the sandbox uses the request id.
        assert answer.headers["x-ms-correlation-request-id"]


async def test_the_clients_correlation_id_is_echoed(api: Api) -> None:
    for correlation in ("5c1e0b7a-7a6e-4d0c-9a3e-0d3f1e2a4b5c", "my-run-42"):
        ok = await api.client.get(vm_url(), params={"api-version": "2025-04-01"},
                                  headers={"x-ms-correlation-request-id": correlation})
        failed = await api.client.get(vm_url("nope"), params={"api-version": "2025-04-01"},
                                      headers={"x-ms-correlation-request-id": correlation})
        for answer in (ok, failed):
            assert answer.headers["x-ms-correlation-request-id"] == correlation
            assert answer.headers["x-ms-request-id"] != correlation


# --------------------------------------------------------------------------------- auth


async def test_no_authorization_header_is_401_authentication_failed(tmp_path: Path) -> None:
    async with sandbox_api(_fleet(), tmp_path, authorized=False) as api:
        for path, version in ((vm_url(), "2025-04-01"), (arc_url(), "2025-01-13"),
                              ("/subscriptions/x/unknown", "2025-04-01")):
            answer = await api.client.get(path, params={"api-version": version})
            message = arm_error(answer, 401, "AuthenticationFailed")
            assert "Authorization" in message
            assert answer.headers["x-ms-request-id"]
        answer = await api.client.post(GRAPH, params={"api-version": GRAPH_VERSION},
                                       json={"query": "Resources"})
        arm_error(answer, 401, "AuthenticationFailed")


@pytest.mark.parametrize("value", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "token abc",
                                   "SharedKey acct:sig"])
async def test_a_non_bearer_authorization_is_401_invalid_token(api: Api, value: str) -> None:
    answer = await api.client.get(vm_url(), params={"api-version": "2025-04-01"},
                                  headers={"Authorization": value})
    message = arm_error(answer, 401, "InvalidAuthenticationToken")
    assert "Bearer" in message


@pytest.mark.parametrize("value", [
    "Bearer x",
    "bearer lower-case-scheme",
    "Bearer eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL21hbmFnZW1lbnQuYXp1cmUuY29tLyJ9.c2ln",
    "Bearer " + "a" * 4000,
])
async def test_only_the_sandboxs_own_bearer_token_is_accepted(api: Api, value: str) -> None:
    answer = await api.client.get(vm_url(), params={"api-version": "2025-04-01"},
                                  headers={"Authorization": value})
    assert arm_error(answer, 401, "InvalidAuthenticationToken") == "The access token is invalid."
    own = api.client.headers["Authorization"].partition(" ")[2]
    for scheme in ("Bearer", "bearer", "BEARER"):
        answer = await api.client.get(vm_url(), params={"api-version": "2025-04-01"},
                                      headers={"Authorization": f"{scheme} {own}"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["name"] == VM


# --------------------------------------------------------------------- case-insensitive paths


@pytest.mark.parametrize("path", [
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/{VM}",
    f"/subscriptions/{SUB}/resourcegroups/{RG}/providers/microsoft.compute/virtualmachines/{VM}",
    f"/SUBSCRIPTIONS/{SUB.upper()}/RESOURCEGROUPS/{RG.upper()}/PROVIDERS/MICROSOFT.COMPUTE"
    f"/VIRTUALMACHINES/{VM.upper()}",
    f"/Subscriptions/{SUB}/ResourceGroups/{RG}/Providers/Microsoft.compute/VirtualMachines"
    f"/{VM.lower()}",
])
async def test_vm_paths_are_case_insensitive_and_keep_the_fleet_spelling(
    api: Api, path: str
) -> None:
    answer = await api.client.get(path, params={"api-version": "2025-04-01"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == VM
    listed = await api.client.get(path + "/RUNCOMMANDS", params={"api-version": "2025-04-01"})
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"value": []}


@pytest.mark.parametrize("path", [
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.HybridCompute/machines"
    f"/{ARC_MACHINE}",
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.HybridCompute/Machines"
    f"/{ARC_MACHINE}",
    f"/subscriptions/{SUB}/resourcegroups/{RG.upper()}/providers/MICROSOFT.HYBRIDCOMPUTE"
    f"/MACHINES/{ARC_MACHINE.lower()}",
])
async def test_arc_paths_are_case_insensitive(api: Api, path: str) -> None:
    answer = await api.client.get(path, params={"api-version": "2025-01-13"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["name"] == ARC_MACHINE
    listed = await api.client.get(path + "/runcommands", params={"api-version": "2025-01-13"})
    assert listed.status_code == 200, listed.text


@pytest.mark.parametrize("machine_url", [vm_url(), arc_url()])
async def test_run_command_names_keep_the_spelling_they_were_created_with(
    api: Api, machine_url: str
) -> None:
    created = await api.put(machine_url.lower(), "MyCmd-One", SCRIPT)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "MyCmd-One"
    for spelling in ("mycmd-one", "MYCMD-ONE", "MyCmd-One"):
        for segment in ("runCommands", "runcommands", "RUNCOMMANDS"):
            version = "2025-01-13" if "Hybrid" in machine_url else "2025-04-01"
            got = await api.client.get(f"{machine_url.upper()}/{segment}/{spelling}",
                                       params={"api-version": version})
            assert got.status_code == 200, got.text
            assert got.json()["name"] == "MyCmd-One"
            assert got.json()["id"].endswith("/MyCmd-One")
    # A re-PUT spelled differently replaces the same resource and keeps the first spelling.
    again = await api.put(machine_url, "MYCMD-ONE", {"source": {"script": "echo again"}})
    assert again.status_code == 200, again.text
    assert again.json()["name"] == "MyCmd-One"
    listed = await api.client.get(f"{machine_url}/runCommands",
                                  params={"api-version": version})
    assert [c["name"] for c in listed.json()["value"]] == ["MyCmd-One"]


# --------------------------------------------------------------------------- api-versions


@pytest.mark.parametrize("version", COMPUTE_VERSIONS)
async def test_compute_api_versions_are_accepted(api: Api, version: str) -> None:
    for path in (vm_url(), vm_url() + "/instanceView", vm_url() + "/runCommands"):
        answer = await api.client.get(path, params={"api-version": version})
        assert answer.status_code == 200, (path, answer.text)
    created = await api.put(vm_url(), f"cmd-{version}", SCRIPT, version=version)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize("version", ARC_VERSIONS)
async def test_hybrid_compute_api_versions_are_accepted(api: Api, version: str) -> None:
    for path in (arc_url(), arc_url() + "/runCommands"):
        answer = await api.client.get(path, params={"api-version": version})
        assert answer.status_code == 200, (path, answer.text)
    created = await api.put(arc_url(), f"cmd-{version}", SCRIPT, version=version)
    assert created.status_code == 201, created.text


async def test_resource_graph_api_version_is_accepted(api: Api) -> None:
    answer = await api.client.post(GRAPH, params={"api-version": GRAPH_VERSION},
                                   json={"query": "Resources | project id"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["totalRecords"] == 3  # two machines and the storage account


@pytest.mark.parametrize(("path", "method", "supported"), [
    (vm_url(), "GET", COMPUTE_VERSIONS),
    (vm_url() + "/runCommands/x", "PUT", COMPUTE_VERSIONS),
    (arc_url() + "/runCommands", "GET", ARC_VERSIONS),
    (GRAPH, "POST", (GRAPH_VERSION,)),
])
@pytest.mark.parametrize("bad", ["1999-01-01", "2025-04-01-preview", "latest", "2025-13-01"])
async def test_an_unknown_api_version_is_400_listing_the_supported_ones(
    api: Api, path: str, method: str, supported: tuple[str, ...], bad: str
) -> None:
    answer = await api.client.request(method, path, params={"api-version": bad},
                                      json={"location": "westeurope", "properties": SCRIPT})
    message = arm_error(answer, 400, "InvalidApiVersionParameter")
    assert f"'{bad}'" in message
    for version in supported:
        assert version in message


@pytest.mark.parametrize("params", [{}, {"api-version": ""}])
async def test_a_missing_api_version_is_400(api: Api, params: dict[str, str]) -> None:
    answer = await api.client.get(vm_url(), params=params)
    message = arm_error(answer, 400, "MissingApiVersionParameter")
    assert "api-version" in message


async def test_arc_and_compute_versions_are_not_interchangeable(api: Api) -> None:
    answer = await api.client.get(arc_url() + "/runCommands", params={"api-version": "2025-04-01"})
    arm_error(answer, 400, "InvalidApiVersionParameter")
    answer = await api.client.get(vm_url() + "/runCommands", params={"api-version": "2025-01-13"})
    arm_error(answer, 400, "InvalidApiVersionParameter")


# ------------------------------------------------------------------------------ not found


@pytest.mark.parametrize(("path", "code", "named"), [
    (Api.vm_path(VM, sub="99999999-9999-4999-8999-999999999999"), "SubscriptionNotFound",
     "99999999-9999-4999-8999-999999999999"),
    (Api.vm_path(VM, group="rg-missing"), "ResourceGroupNotFound", "rg-missing"),
    (Api.vm_path("vm-missing"), "ResourceNotFound", "vm-missing"),
    (Api.vm_path("vm-missing") + "/runCommands", "ResourceNotFound", "vm-missing"),
    (Api.vm_path(VM) + "/runCommands/never-made", "ResourceNotFound", "never-made"),
    # An Arc machine is not a VM, even with the same name and group.
    (Api.vm_path(ARC_MACHINE), "ResourceNotFound", ARC_MACHINE),
])
async def test_unknown_compute_resources_are_404(
    api: Api, path: str, code: str, named: str
) -> None:
    answer = await api.client.get(path, params={"api-version": "2025-04-01"})
    assert named in arm_error(answer, 404, code)


@pytest.mark.parametrize(("path", "code"), [
    (Api.arc_path(ARC_MACHINE, sub="99999999-9999-4999-8999-999999999999"),
     "SubscriptionNotFound"),
    (Api.arc_path(ARC_MACHINE, group="rg-missing"), "ResourceGroupNotFound"),
    (Api.arc_path("arc-missing"), "ResourceNotFound"),
    (Api.arc_path(VM), "ResourceNotFound"),
    (Api.arc_path(ARC_MACHINE) + "/runCommands/never-made", "ResourceNotFound"),
])
async def test_unknown_arc_resources_are_404(api: Api, path: str, code: str) -> None:
    answer = await api.client.get(path, params={"api-version": "2025-01-13"})
    arm_error(answer, 404, code)


async def test_put_on_an_unknown_machine_is_404_not_created(api: Api) -> None:
    answer = await api.put(Api.vm_path("vm-missing"), "cmd", SCRIPT)
    arm_error(answer, 404, "ResourceNotFound")
    answer = await api.put(Api.arc_path(ARC_MACHINE, group="rg-missing"), "cmd", SCRIPT)
    arm_error(answer, 404, "ResourceGroupNotFound")


async def test_unknown_provider_namespace_is_400(api: Api) -> None:
    path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Nope/things/x"
    answer = await api.client.get(path, params={"api-version": "2025-04-01"})
    message = arm_error(answer, 400, "InvalidResourceNamespace")
    assert "Microsoft.Nope" in message and "Microsoft.Compute" in message


@pytest.mark.parametrize("path", [
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/disks/d1",
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines"
    f"/{VM}/extensions/x",
    f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.HybridCompute/gateways/g",
])
async def test_unknown_resource_type_is_404_naming_what_is_served(api: Api, path: str) -> None:
    answer = await api.client.get(path, params={"api-version": "2025-04-01"})
    message = arm_error(answer, 404, "InvalidResourceType")
    assert "virtualMachines" in message and "runCommands" in message


async def test_a_path_outside_any_provider_is_404(api: Api) -> None:
    answer = await api.client.get(f"/subscriptions/{SUB}/resourceGroups",
                                  params={"api-version": "2025-04-01"})
    assert answer.status_code == 404
    arm_error(answer, 404, answer.json()["error"]["code"])


async def test_a_method_the_route_lacks_is_405(api: Api) -> None:
    answer = await api.client.delete(vm_url(), params={"api-version": "2025-04-01"})
    message = arm_error(answer, 405, "MethodNotAllowed")
    assert "GET" in message


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe"])
async def test_a_bad_put_body_is_400_with_an_arm_error(api: Api, body: bytes) -> None:
    answer = await api.client.put(vm_url() + "/runCommands/x",
                                  params={"api-version": "2025-04-01"}, content=body,
                                  headers={"Content-Type": "application/json"})
    arm_error(answer, 400, "InvalidRequestContent")


# ------------------------------------------------------------------------- PATCH, $expand


@pytest.mark.parametrize("version", ["2024-07-10", "2025-01-13"])
async def test_arc_patch_updates_tags_in_the_versions_that_have_it(
    api: Api, version: str
) -> None:
    assert (await api.put(arc_url(), "cmd", SCRIPT)).status_code == 201
    answer = await api.client.patch(arc_url() + "/runCommands/cmd",
                                    params={"api-version": version},
                                    json={"tags": {"owner": "ops"}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["tags"] == {"owner": "ops"}


@pytest.mark.parametrize("version", ["2026-07-15", "2026-09-01"])
async def test_arc_patch_in_other_versions_is_405_saying_use_put(
    api: Api, version: str
) -> None:
    assert (await api.put(arc_url(), "cmd", SCRIPT)).status_code == 201
    answer = await api.client.patch(arc_url() + "/runCommands/cmd",
                                    params={"api-version": version},
                                    json={"tags": {"owner": "ops"}})
    message = arm_error(answer, 405, "MethodNotAllowed")
    assert "PUT" in message and version in message
    assert "2024-07-10" in message and "2025-01-13" in message


async def test_compute_patch_is_allowed(api: Api) -> None:
    assert (await api.put(vm_url(), "cmd", SCRIPT)).status_code == 201
    answer = await api.client.patch(vm_url() + "/runCommands/cmd",
                                    params={"api-version": "2025-04-01"},
                                    json={"properties": {"timeoutInSeconds": 30}})
    assert answer.status_code in (200, 201), answer.text
    assert answer.json()["properties"]["timeoutInSeconds"] == 30


async def test_compute_returns_the_instance_view_only_when_expanded(api: Api) -> None:
    assert (await api.put(vm_url(), "cmd", SCRIPT)).status_code == 201
    plain = await api.get(vm_url(), "cmd", expand=False)
    assert plain.status_code == 200
    assert "instanceView" not in plain.json()["properties"]
    expanded = await api.get(vm_url(), "cmd", expand=True)
    assert "executionState" in expanded.json()["properties"]["instanceView"]
    lower = await api.client.get(vm_url() + "/runCommands/cmd",
                                 params={"api-version": "2025-04-01", "$expand": "instanceview"})
    assert "instanceView" in lower.json()["properties"]
    listed = await api.client.get(vm_url() + "/runCommands",
                                  params={"api-version": "2025-04-01"})
    assert "instanceView" not in listed.json()["value"][0]["properties"]
    listed = await api.client.get(vm_url() + "/runCommands",
                                  params={"api-version": "2025-04-01", "$expand": "instanceView"})
    assert "instanceView" in listed.json()["value"][0]["properties"]


async def test_arc_always_returns_the_instance_view(api: Api) -> None:
    assert (await api.put(arc_url(), "cmd", SCRIPT)).status_code == 201
    plain = await api.get(arc_url(), "cmd", expand=False)
    assert "executionState" in plain.json()["properties"]["instanceView"]
    listed = await api.client.get(arc_url() + "/runCommands",
                                  params={"api-version": "2025-01-13"})
    assert "instanceView" in listed.json()["value"][0]["properties"]


# ---------------------------------------------------------------- long-running operations


async def _poll(client: httpx.AsyncClient, url: str, until: int, within: float = 5.0
                ) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        answer = await client.get(url)
        if answer.status_code == until:
            return answer
        assert time.monotonic() < deadline, f"{url} still {answer.status_code}: {answer.text}"
        await asyncio.sleep(0.05)


def _check_status_body(body: dict[str, Any], operation: str, *, done: bool) -> None:
    assert body["name"] == operation
    assert body["startTime"]
    if done:
        assert body["status"] == "Succeeded"
        assert body["endTime"] >= body["startTime"]
    else:
        assert body["status"] == "InProgress"
        assert "endTime" not in body


async def test_compute_put_lro_headers_status_and_location(api: Api) -> None:
    created = await api.put(vm_url(), "lro", SCRIPT)
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["provisioningState"] == "Creating"
    status_url = created.headers["Azure-AsyncOperation"]
    result_url = created.headers["Location"]
    assert int(created.headers["Retry-After"]) >= 1
    prefix = (f"{api.base_url}/subscriptions/{SUB}/providers/Microsoft.Compute/locations"
              "/westeurope/operations/")
    assert status_url.startswith(prefix) and result_url.startswith(prefix)
    operation = status_url.removeprefix(prefix).split("?")[0]
    assert "api-version=2025-04-01" in status_url and "api-version=2025-04-01" in result_url

    status = await api.client.get(status_url)
    assert status.status_code == 200
    _check_status_body(status.json(), operation, done=False)
    pending = await api.client.get(result_url)
    assert pending.status_code == 202
    assert pending.content == b""
    assert pending.headers["Location"] and int(pending.headers["Retry-After"]) >= 1

    final = await _poll(api.client, result_url, 200)
    assert final.json()["name"] == "lro"
    assert final.json()["properties"]["provisioningState"] == "Succeeded"
    assert "instanceView" not in final.json()["properties"]
    status = await api.client.get(status_url)
    _check_status_body(status.json(), operation, done=True)

    # An identical re-PUT starts nothing: 200 and no operation to follow.
    again = await api.put(vm_url(), "lro", SCRIPT)
    assert again.status_code == 200
    assert "Azure-AsyncOperation" not in again.headers

    # DELETE: 202 + Location, then the Location answers 204; a second DELETE is 204.
    deleted = await api.delete(vm_url(), "lro")
    assert deleted.status_code == 202, deleted.text
    assert (await _poll(api.client, deleted.headers["Location"], 204)).content == b""
    assert (await api.delete(vm_url(), "lro")).status_code == 204


async def test_arc_put_lro_operation_status_and_results(api: Api) -> None:
    created = await api.put(arc_url(), "lro", SCRIPT)
    assert created.status_code == 201, created.text
    status_url = created.headers["Azure-AsyncOperation"]
    result_url = created.headers["Location"]
    assert int(created.headers["Retry-After"]) >= 1
    where = f"/subscriptions/{SUB}/providers/Microsoft.HybridCompute/locations/westeurope"
    assert f"{where}/operationStatus/" in status_url
    assert f"{where}/operationResults/" in result_url
    operation = status_url.split("/operationStatus/")[1].split("?")[0]

    status = await api.client.get(status_url)
    assert status.status_code == 200
    _check_status_body(status.json(), operation, done=False)
    assert status.json()["id"].endswith(f"/operationStatus/{operation}")
    assert (await api.client.get(result_url)).status_code == 202

    final = await _poll(api.client, result_url, 200)
    assert final.json()["name"] == "lro"
    assert final.json()["properties"]["instanceView"]["executionState"] == "Succeeded"
    _check_status_body((await api.client.get(status_url)).json(), operation, done=True)


async def test_an_unknown_operation_is_404(api: Api) -> None:
    path = (f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/operations/"
            "00000000-0000-4000-8000-000000000000")
    answer = await api.client.get(path, params={"api-version": "2025-04-01"})
    assert answer.status_code == 404
    arm_error(answer, 404, answer.json()["error"]["code"])


# ------------------------------------------------------------------------- Resource Graph


async def test_resource_graph_pages_through_the_default_fleet(tmp_path: Path) -> None:
    fleet = default_fleet()
    # Uniform scale set instances live in ComputeResources; the scale sets and the storage
    # account are resources.
    in_resources = [*(m.name for m in fleet.machines if not m.uniform),
                    *(s.name for s in fleet.scale_sets), fleet.account]
    async with sandbox_api(fleet, tmp_path) as api:
        query = "Resources | project id, name, type | order by id asc"
        options: dict[str, Any] = {"$top": 5}
        rows: list[dict[str, Any]] = []
        pages = 0
        while True:
            answer = await api.client.post(
                "/PROVIDERS/microsoft.resourcegraph/Resources",
                params={"api-version": GRAPH_VERSION},
                json={"query": query, "options": options})
            assert answer.status_code == 200, answer.text
            page = answer.json()
            pages += 1
            assert page["totalRecords"] == len(in_resources)
            assert page["count"] == len(page["data"]) <= 5
            rows.extend(page["data"])
            if "$skipToken" not in page:
                break
            options = {"$skipToken": page["$skipToken"]}
            assert pages < 10
    assert pages == 5
    names = [row["name"] for row in rows]
    assert sorted(names) == sorted(in_resources)
    assert len({row["id"] for row in rows}) == len(rows) == 23
    assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
    types = {row["type"] for row in rows}
    assert types == {"microsoft.compute/virtualmachines", "microsoft.hybridcompute/machines",
                     "microsoft.compute/virtualmachinescalesets",
                     "microsoft.storage/storageaccounts"}


@pytest.mark.parametrize("query", ["Foo", "Resources | frobnicate", "Resources | where"])
async def test_resource_graph_refuses_an_unknown_query_with_a_clear_400(
    api: Api, query: str
) -> None:
    answer = await api.client.post(GRAPH, params={"api-version": GRAPH_VERSION},
                                   json={"query": query})
    message = arm_error(answer, 400, "BadRequest")
    assert message.startswith("query: ")
    details = answer.json()["error"]["details"]
    assert details[0]["code"] == "InvalidQuery"
    assert details[1]["message"] == message


async def test_resource_graph_needs_a_json_body(api: Api) -> None:
    answer = await api.client.post(GRAPH, params={"api-version": GRAPH_VERSION})
    arm_error(answer, 400, "InvalidRequestContent")
