"""Conformance of the sandbox's Microsoft.Storage answers with the spec's examples.

Each example in ``tests/specs/storage/`` is replayed over HTTP against a fleet holding the
storage account it names (its subscription, resource group and name as spelled there); each
answer must have a status the example documents, the example's ids and names, the shape of
the example's body (``shape_mismatches``) and a body valid against the operation's schema
(``blob.json``'s BlobContainer, ``storage.json``'s StorageAccountListResult). Beyond the
examples, every page of both account lists (a subscription's, a resource group's) is checked
against StorageAccountListResult, and so are container answers and errors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.fleet import FleetSpec
from core.sandbox.storage_arm import ACCOUNTS_PER_PAGE
from tests.sandbox.arm_client import Api, make_fleet, sandbox_api
from tests.sandbox.openapi import STORAGE_EXAMPLES, Example, shape_mismatches, spec_index

EXAMPLES = {e.name: e for e in spec_index().load_examples()
            if e.name.startswith(STORAGE_EXAMPLES)}
_LRS = "the sandbox's accounts are locally redundant (Standard_LRS): no secondary region"
_ACCOUNT_LIST_MISMATCHES = {
    **{f"value[].properties.primaryEndpoints.{service}": "the sandbox serves blobs only"
       for service in ("web", "dfs", "file", "queue", "table")},
    "value[].properties.secondaryLocation": _LRS,
    "value[].properties.statusOfSecondary": _LRS,
    "value[].tags": "the fleet file gives its storage accounts no tags",
}
ALLOWED_MISMATCHES: dict[str, dict[str, str]] = {
    STORAGE_EXAMPLES + "BlobContainersGet.json": {
        "properties.immutabilityPolicy": "the sandbox's containers have no immutability policy "
        "(hasImmutabilityPolicy false)",
        "properties.legalHold": "the sandbox's containers have no legal hold (hasLegalHold false)",
    },
    STORAGE_EXAMPLES + "StorageAccountListByResourceGroup.json": _ACCOUNT_LIST_MISMATCHES,
    STORAGE_EXAMPLES + "StorageAccountList.json": {
        **_ACCOUNT_LIST_MISMATCHES,
        **{f"value[].properties.primaryEndpoints.{routing}Endpoints": "the sandbox publishes "
           "no routing-preference endpoints (routingPreference unset)"
           for routing in ("microsoft", "internet")},
        "value[].properties.routingPreference": "the sandbox's accounts set no routing "
        "preference (optional; Microsoft routing is the default)",
        "value[].properties.encryption": "encryption is optional in StorageAccountProperties; "
        "the sandbox keeps no encryption settings",
    },
}


_ACCOUNT_ID = re.compile(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
                         r"Microsoft\.Storage/storageAccounts/([^/]+)$")


def _fleet(example: Example) -> FleetSpec:
    params = example.parameters
    subscription = params["subscriptionId"]
    if "accountName" in params:
        accounts = [(params["resourceGroupName"], params["accountName"])]
    else:  # a list: the accounts it answers, each in its own resource group
        accounts = []
        for item in example.responses[200]["body"]["value"]:
            match = _ACCOUNT_ID.fullmatch(item["id"])
            assert match and match[1] == subscription, item["id"]
            accounts.append((match[2], match[3]))
    # The machine (and so the [storage] account) lives elsewhere: the example's subscription
    # (or resource group, for the subscription-wide list) holds only the example's accounts.
    machine_subscription = (subscription if "resourceGroupName" in params
                            else f"{subscription}-machines")
    return make_fleet({"name": "vm", "kind": "vm", "os": "linux",
                       "subscription": machine_subscription, "resource_group": "rg-vm"},
                      storage_accounts=[{"name": name, "subscription": subscription,
                                         "resource_group": group}
                                        for group, name in accounts])


def _check(example: Example, status: int, answer: httpx.Response) -> None:
    assert answer.status_code == status, answer.text
    assert status in example.responses, f"{status} is not documented by {example.name}"
    errors = spec_index().response_errors(example.operation_id, status, _json(answer))
    assert not errors, "\n".join(errors)
    expected = example.responses[status].get("body")
    if expected is None:
        assert answer.content == b""
        return
    body: dict[str, Any] = answer.json()
    ignore = set(ALLOWED_MISMATCHES.get(example.name, {}))
    mismatches = shape_mismatches(expected, body, ignore=ignore)
    assert not mismatches, "\n".join(mismatches)
    # The example's very ids, names and types (a list in any order: ARM promises none).
    assert _identities(body) == _identities(expected)


def _identities(body: dict[str, Any]) -> list[tuple[str, str, str]]:
    items = body["value"] if "value" in body else [body]
    return sorted((item["id"], item["name"], item["type"]) for item in items)


def _json(answer: httpx.Response) -> Any:
    return answer.json() if answer.content else None


async def _send(api: Api, example: Example, method: str | None = None) -> httpx.Response:
    operation = spec_index().operation(example.operation_id)
    return await api.client.request(method or operation.method.upper(),
                                    spec_index().request_path(example),
                                    json=example.request_body)


async def _replay(api: Api, example: Example) -> list[tuple[int, httpx.Response]]:
    operation = example.operation_id
    if operation == "BlobContainers_Create":
        return [(201, await _send(api, example)), (200, await _send(api, example))]
    if operation == "BlobContainers_Get":
        assert (await _send(api, example, "PUT")).status_code == 201
        return [(200, await _send(api, example))]
    if operation == "BlobContainers_Delete":
        assert (await _send(api, example, "PUT")).status_code == 201
        return [(200, await _send(api, example)), (204, await _send(api, example))]
    return [(200, await _send(api, example))]


@pytest.mark.parametrize("example", list(EXAMPLES.values()), ids=list(EXAMPLES))
async def test_example_replays(example: Example, tmp_path: Path) -> None:
    async with sandbox_api(_fleet(example), tmp_path) as api:
        answers = await _replay(api, example)

    for status, answer in answers:
        _check(example, status, answer)
    # Every documented status is produced.
    assert sorted({status for status, _ in answers}) == sorted(example.responses)


def test_every_storage_example_is_replayed() -> None:
    assert sorted(EXAMPLES) == sorted(STORAGE_EXAMPLES + name for name in (
        "BlobContainersDelete.json", "BlobContainersGet.json", "BlobContainersPut.json",
        "StorageAccountList.json", "StorageAccountListByResourceGroup.json"))


async def test_every_page_of_both_account_lists_matches_storage_json(tmp_path: Path) -> None:
    # More accounts than one page holds, in two resource groups: the subscription's list and
    # one group's list each take several pages, every one a StorageAccountListResult.
    groups = {"rg1": 2 * ACCOUNTS_PER_PAGE + 3, "rg2": 4}
    fleet = make_fleet({"name": "vm", "kind": "vm", "os": "linux", "subscription": "s1",
                        "resource_group": "rg-vm"},
                       storage_accounts=[{"name": f"{group}acct{n:03d}", "subscription": "s1",
                                          "resource_group": group}
                                         for group, count in groups.items()
                                         for n in range(count)])
    accounts = "/providers/Microsoft.Storage/storageAccounts?api-version=2025-06-01"
    lists = {"StorageAccounts_List": f"/subscriptions/s1{accounts}",
             "StorageAccounts_ListByResourceGroup": f"/subscriptions/s1/resourceGroups/rg1"
                                                    f"{accounts}"}
    spec = spec_index()
    found: dict[str, list[str]] = {}
    async with sandbox_api(fleet, tmp_path) as api:
        for operation, url in lists.items():
            pages: list[dict[str, Any]] = []
            next_url: str | None = url
            while next_url is not None:
                answer = await api.client.get(next_url)
                assert answer.status_code == 200, answer.text
                spec.validate_response(operation, 200, answer.json())
                pages.append(answer.json())
                next_url = pages[-1].get("nextLink")
            assert len(pages) > 1, f"{operation}: one page only"
            found[operation] = [account["name"] for page in pages for account in page["value"]]

    # The fleet's own [storage] account is in the machine's resource group (rg-vm).
    assert sorted(found["StorageAccounts_List"]) == sorted(
        [f"{group}acct{n:03d}" for group, count in groups.items() for n in range(count)]
        + [fleet.account])
    assert sorted(found["StorageAccounts_ListByResourceGroup"]) == [
        f"rg1acct{n:03d}" for n in range(groups["rg1"])]


_STORAGE_ERROR = "storage/stable/2025-06-01/common.json#/definitions/CloudError"
# Error answers: (method, account, container, request body, status, error code).
ERRORS = [
    ("GET", "acct1", "nope", None, 404, "ContainerNotFound"),
    ("GET", "nope1", "abc", None, 404, "ResourceNotFound"),
    ("PUT", "acct1", "A_B", {}, 400, "InvalidParameter"),
    ("PUT", "acct1", "abc", {"properties": {"publicAccess": "Bogus"}}, 400, "InvalidParameter"),
]


async def test_container_answers_match_blob_json_beyond_the_examples(tmp_path: Path) -> None:
    # A container with metadata and public access, then its errors: Storage's CloudError
    # (common.json; blob.json declares no error response for these operations, so that is the
    # body Azure's Storage RP documents for its errors).
    fleet = make_fleet({"name": "vm", "kind": "vm", "os": "linux", "subscription": "s1",
                        "resource_group": "rg-vm"},
                       storage_accounts=[{"name": "acct1", "subscription": "s1",
                                          "resource_group": "rg1"}])
    accounts = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts"
    version = {"api-version": "2025-06-01"}
    spec = spec_index()
    async with sandbox_api(fleet, tmp_path) as api:
        body = {"properties": {"metadata": {"team": "ops"}, "publicAccess": "Blob"}}
        spec.validate_request("BlobContainers_Create", body)
        path = f"{accounts}/acct1/blobServices/default/containers/withmeta"
        created = await api.client.put(path, params=version, json=body)
        assert created.status_code == 201, created.text
        spec.validate_response("BlobContainers_Create", 201, created.json())
        got = await api.client.get(path, params=version)
        spec.validate_response("BlobContainers_Get", 200, got.json())
        assert got.json()["properties"]["metadata"] == {"team": "ops"}
        for method, account, container, payload, status, code in ERRORS:
            answer = await api.client.request(
                method, f"{accounts}/{account}/blobServices/default/containers/{container}",
                params=version, json=payload)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
            errors = spec.errors(spec.schema(_STORAGE_ERROR), answer.json())
            assert not errors, "\n".join(errors)
