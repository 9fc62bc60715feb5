"""Conformance of the sandbox's Microsoft.Storage answers with the spec's examples.

Each example in ``tests/specs/storage/`` is replayed over HTTP against a fleet holding the
storage account it names (its subscription, resource group and name as spelled there); each
answer must have a status the example documents, the example's ids and names, the shape of
the example's body (``shape_mismatches``) and a body valid against the operation's schema in
``blob.json``. The storage account list is shape only: its schema (StorageAccountListResult)
is in ``storage.json``, which was not copied (``openapi._NO_STORAGE_SPEC``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.fleet import FleetSpec
from tests.sandbox.arm_client import Api, make_fleet, sandbox_api
from tests.sandbox.openapi import STORAGE_EXAMPLES, Example, shape_mismatches, spec_index

EXAMPLES = {e.name: e for e in spec_index().load_examples()
            if e.name.startswith(STORAGE_EXAMPLES)}
_LRS = "the sandbox's accounts are locally redundant (Standard_LRS): no secondary region"
ALLOWED_MISMATCHES: dict[str, dict[str, str]] = {
    STORAGE_EXAMPLES + "BlobContainersGet.json": {
        "properties.immutabilityPolicy": "the sandbox's containers have no immutability policy "
        "(hasImmutabilityPolicy false)",
        "properties.legalHold": "the sandbox's containers have no legal hold (hasLegalHold false)",
    },
    STORAGE_EXAMPLES + "StorageAccountListByResourceGroup.json": {
        **{f"value[].properties.primaryEndpoints.{service}": "the sandbox serves blobs only"
           for service in ("web", "dfs", "file", "queue", "table")},
        "value[].properties.secondaryLocation": _LRS,
        "value[].properties.statusOfSecondary": _LRS,
        "value[].tags": "the fleet file gives its storage accounts no tags",
    },
}


def _fleet(example: Example) -> FleetSpec:
    params = example.parameters
    where = {"subscription": params["subscriptionId"],
             "resource_group": params["resourceGroupName"]}
    if "accountName" in params:
        names = [params["accountName"]]
    else:
        names = [item["name"] for item in example.responses[200]["body"]["value"]]
    # The machine (and so the [storage] account) lives elsewhere: the example's resource
    # group holds only the example's accounts.
    return make_fleet({"name": "vm", "kind": "vm", "os": "linux",
                       "subscription": params["subscriptionId"], "resource_group": "rg-vm"},
                      storage_accounts=[{"name": name, **where} for name in names])


def _check(example: Example, status: int, answer: httpx.Response) -> None:
    assert answer.status_code == status, answer.text
    assert status in example.responses, f"{status} is not documented by {example.name}"
    if not spec_index().operation(example.operation_id).unavailable:
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
    pairs = (zip(body["value"], expected["value"], strict=True) if "value" in expected
             else [(body, expected)])
    for ours, theirs in pairs:  # the example's very ids, names and types
        assert [ours[k] for k in ("id", "name", "type")] == [
            theirs[k] for k in ("id", "name", "type")]


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
        "StorageAccountListByResourceGroup.json"))


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
