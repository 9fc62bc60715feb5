"""Microsoft.Storage through the sandbox's ARM: storage accounts listed (with their blob
endpoint, the sandbox's own), blob containers created, re-put, read and deleted, under the
ARM conventions every other sandbox endpoint follows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.fleet import FleetFileError, default_fleet
from tests.sandbox.arm_client import RG, SUB, Api, make_fleet, sandbox_api

STORAGE = "2025-06-01"
OTHER_RG = "rg-storage"


def accounts_path(group: str | None = None, sub: str = SUB) -> str:
    middle = f"/resourceGroups/{group}" if group else ""
    return f"/subscriptions/{sub}{middle}/providers/Microsoft.Storage/storageAccounts"


def container_path(account: str, container: str, group: str = RG) -> str:
    return (f"{accounts_path(group)}/{account}/blobServices/default/containers/{container}")


def storage_fleet(extra_accounts: int = 0) -> Any:
    accounts = [{"name": "fleetrunout", "resource_group": OTHER_RG, "containers": ["out"]}]
    accounts += [{"name": f"extra{n:03d}", "resource_group": OTHER_RG}
                 for n in range(extra_accounts)]
    return make_fleet({"name": "vm1", "kind": "vm", "os": "linux"},
                      storage_accounts=accounts)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with sandbox_api(storage_fleet(), tmp_path, served=True) as api:
        yield api


async def list_all(api: Api, path: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    url: str | None = f"{path}?api-version={STORAGE}"
    while url is not None:
        response = await api.client.get(url)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["value"]
        url = body.get("nextLink")
    return found


async def test_accounts_are_listed_with_the_sandbox_as_their_blob_endpoint(api: Api) -> None:
    accounts = await list_all(api, accounts_path())

    by_name = {a["name"]: a for a in accounts}
    assert set(by_name) == {"fleetrunsandbox", "fleetrunout"}
    out = by_name["fleetrunout"]
    assert out["type"] == "Microsoft.Storage/storageAccounts"
    assert out["id"] == f"{accounts_path(OTHER_RG)}/fleetrunout"
    endpoint = out["properties"]["primaryEndpoints"]["blob"]
    assert endpoint == f"{api.base_url}/fleetrunout/"
    # The endpoint serves that account: a container the fleet file gave it is there.
    assert "out" in api.service.blobs.containers("fleetrunout")


async def test_a_resource_group_lists_only_its_accounts(api: Api) -> None:
    assert [a["name"] for a in await list_all(api, accounts_path(OTHER_RG))] == ["fleetrunout"]
    assert [a["name"] for a in await list_all(api, accounts_path(RG))] == ["fleetrunsandbox"]
    assert await list_all(api, accounts_path("rg-empty")) == []


async def test_many_accounts_come_in_pages_linked_by_next_link(tmp_path: Path) -> None:
    async with sandbox_api(storage_fleet(extra_accounts=45), tmp_path) as api:
        first = (await api.client.get(f"{accounts_path()}?api-version={STORAGE}")).json()
        everything = await list_all(api, accounts_path())

    assert "nextLink" in first and len(first["value"]) < 47
    assert len(everything) == 47
    assert len({a["name"] for a in everything}) == 47


async def test_a_container_is_created_then_re_put_then_read_then_deleted(api: Api) -> None:
    url = f"{container_path('fleetrunout', 'runs', OTHER_RG)}?api-version={STORAGE}"

    created = await api.client.put(url, json={})
    again = await api.client.put(url, json={"properties": {"metadata": {"by": "fleetrun"}}})
    read = await api.client.get(url)
    deleted = await api.client.delete(url)
    gone = await api.client.get(url)
    deleted_again = await api.client.delete(url)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "runs"
    assert body["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"
    assert body["id"].endswith("/fleetrunout/blobServices/default/containers/runs")
    assert again.status_code == 200
    assert read.status_code == 200 and read.json()["properties"]["metadata"] == {"by": "fleetrun"}
    assert deleted.status_code == 200
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ContainerNotFound"
    assert deleted_again.status_code == 204


async def test_a_container_put_over_arm_is_usable_on_the_blob_endpoint(api: Api) -> None:
    url = f"{container_path('fleetrunout', 'runs', OTHER_RG)}?api-version={STORAGE}"
    assert (await api.client.put(url)).status_code == 201

    assert "runs" in api.service.blobs.containers("fleetrunout")


@pytest.mark.parametrize(("path", "status", "code"), [
    (container_path("fleetrunout", "runs"), 404, "ResourceNotFound"),  # wrong group
    (container_path("nosuchaccount", "runs", OTHER_RG), 404, "ResourceNotFound"),
    (container_path("fleetrunout", "Bad_Name", OTHER_RG), 400, "InvalidParameter"),
])
async def test_container_refusals(api: Api, path: str, status: int, code: str) -> None:
    response = await api.client.put(f"{path}?api-version={STORAGE}", json={})

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


async def test_arm_conventions_hold_for_storage(api: Api) -> None:
    path = container_path("fleetrunout", "runs", OTHER_RG)
    no_version = await api.client.put(path, json={})
    bad_version = await api.client.put(f"{path}?api-version=2019-01-01", json={})
    bad_body = await api.client.put(f"{path}?api-version={STORAGE}",
                                    json={"properties": {"publicAccess": "Everyone"}})
    anonymous = await httpx.AsyncClient(base_url=api.base_url).get(
        f"{accounts_path()}?api-version={STORAGE}")

    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    assert bad_version.json()["error"]["code"] == "InvalidApiVersionParameter"
    assert bad_body.status_code == 400
    assert anonymous.status_code == 401
    assert "x-ms-ratelimit-remaining-subscription-writes" in bad_body.headers


def test_the_default_fleet_has_one_storage_account() -> None:
    from core.sandbox.storage_arm import accounts_of

    accounts = accounts_of(default_fleet())

    assert [a.name for a in accounts] == ["fleetrunsandbox"]
    assert accounts[0].containers == ("fleetrun",)


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "Bad"}, "storage_accounts[0].name: 'Bad' is not allowed"),
    ({"name": "fleetrunout", "machine_identity_roles": {"*": "Owner"}},
     "storage_accounts[0].machine_identity_roles.*: 'Owner' is not allowed"),
    ({"name": "fleetrunsandbox", "key": "abcd"}, "is the [storage] account"),
    ({"name": "fleetrunout", "colour": "red"}, "storage_accounts[0].colour: unknown key"),
])
def test_bad_storage_accounts_are_named(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetFileError, match=message.replace("[", r"\[").replace("*", r"\*")):
        make_fleet({"name": "vm1", "kind": "vm", "os": "linux"}, storage_accounts=[entry])


GRAPH = "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01"


async def graph(api: Api, query: str, **body: Any) -> list[dict[str, Any]]:
    response = await api.client.post(GRAPH, json={"query": query, **body})
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


async def test_accounts_are_rows_of_resource_graphs_resources_table(api: Api) -> None:
    # Reference 1.3's alternative to the per-subscription listing.
    rows = await graph(api, "resources | where type =~ 'microsoft.storage/storageaccounts' "
                       "| project name, resourceGroup, subscriptionId, "
                       "blob = tostring(properties.primaryEndpoints.blob), id | order by name asc")
    assert rows == [
        {"name": "fleetrunout", "resourceGroup": OTHER_RG, "subscriptionId": SUB,
         "blob": f"{api.base_url}/fleetrunout/", "id": f"{accounts_path(OTHER_RG)}/fleetrunout"},
        {"name": "fleetrunsandbox", "resourceGroup": RG.lower(), "subscriptionId": SUB,
         "blob": f"{api.base_url}/fleetrunsandbox/",
         "id": f"{accounts_path(RG)}/fleetrunsandbox"},
    ]
    (row,) = await graph(api, "resources | where name =~ 'FLEETRUNOUT'")
    assert row["type"] == "microsoft.storage/storageaccounts"
    assert row["location"] == "westeurope" and row["properties"]["provisioningState"]
    # Narrowed by resource group in the query, and by the request's subscriptions.
    assert await graph(api, "resources | where type =~ 'microsoft.storage/storageaccounts' "
                       f"and resourceGroup =~ '{RG.upper()}' | project name") == [
        {"name": "fleetrunsandbox"}]
    other = "99999999-9999-4999-8999-999999999999"
    assert await graph(api, "resources | where type =~ 'microsoft.storage/storageaccounts'",
                       subscriptions=[other]) == []
