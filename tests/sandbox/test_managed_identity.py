"""Run commands that write their blobs, or read their script, as the VM's managed identity,
and scripts fetched from ``source.scriptUri`` (SAS or identity) before they run.

What a user sees: with ``outputBlobManagedIdentity: {}`` and a plain blob URL the full output
lands in the blob, as long as the fleet file leaves the machines' identity its Storage Blob
Data Contributor role on that container; otherwise the run fails with the handler's -101
before the script starts. A script that cannot be downloaded fails with -100, and nothing
runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from azure.storage.blob import UserDelegationKey, generate_blob_sas

from core.sandbox.blob_sink import BlobSinks
from core.sandbox.storage_errors import Conditions
from tests.sandbox.arm_client import Api, make_fleet, sandbox_api

LINUX_VM = {"name": "vm-1", "kind": "vm", "os": "linux"}
LINUX_ARC = {"name": "arc-1", "kind": "arc", "os": "linux", "agent_version": "1.45.02800.0"}
VM = Api.vm_path("vm-1")
ARC = Api.arc_path("arc-1")
SYSTEM: dict[str, str] = {}
SOME_GUID = "6f2c1d3e-0a4b-4c5d-8e9f-0123456789ab"


def fleet_with_roles(roles: Mapping[str, str] | None = None, *machines: Mapping[str, Any]) -> Any:
    accounts = []
    if roles is not None:
        accounts = [{"name": "fleetrunsandbox", "machine_identity_roles": dict(roles)}]
    return make_fleet(*(machines or (LINUX_VM,)), storage_accounts=accounts)


def plain_url(api: Api, blob: str) -> str:
    """A blob URL without SAS: only a managed identity can write it."""
    return api.blob_url(blob).split("?")[0]


def blob_text(api: Api, blob: str) -> str:
    fleet = api.service.fleet
    data = api.service.blobs.read(fleet.account, fleet.containers[0], blob).data
    return data.decode()


def upload_script(api: Api, blob: str, text: str) -> None:
    fleet = api.service.fleet
    api.service.blobs.put_block_blob(fleet.account, fleet.containers[0], blob, text.encode(),
                                     conditions=Conditions())


async def run(api: Api, name: str, props: Mapping[str, Any], machine: str = VM
              ) -> dict[str, Any]:
    put = await api.put(machine, name, props)
    assert put.status_code == 201, put.text
    view: dict[str, Any] = (await api.wait_for(machine, name))["properties"]["instanceView"]
    return view


async def test_the_system_identity_writes_the_output_blob(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        view = await run(api, "mi", {"source": {"script": "echo full output"},
                                     "outputBlobUri": plain_url(api, "mi/out"),
                                     "outputBlobManagedIdentity": SYSTEM})

        assert view["executionState"] == "Succeeded", view
        assert blob_text(api, "mi/out") == "full output\n"


@pytest.mark.parametrize("role", ["none", "Storage Blob Data Reader"])
async def test_an_identity_without_contributor_fails_before_the_script(
    tmp_path: Path, role: str
) -> None:
    marker = tmp_path / "ran"
    async with sandbox_api(fleet_with_roles({"fleetrun": role}), tmp_path) as api:
        view = await run(api, "denied", {"source": {"script": f"touch {marker}"},
                                         "outputBlobUri": plain_url(api, "denied/out"),
                                         "outputBlobManagedIdentity": SYSTEM})

    assert view["executionState"] == "Failed"
    assert view["exitCode"] == -101
    assert "AuthorizationPermissionMismatch" in view["executionMessage"]
    assert "Storage Blob Data Contributor role" in view["executionMessage"]
    assert not marker.exists()


async def test_a_user_assigned_identity_is_not_attached(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        view = await run(api, "uami", {"source": {"script": "echo hi"},
                                       "errorBlobUri": plain_url(api, "uami/err"),
                                       "errorBlobManagedIdentity": {"clientId": SOME_GUID}})

    assert view["exitCode"] == -101
    assert f"no user-assigned identity with clientId {SOME_GUID}" in view["executionMessage"]


async def test_a_refused_sas_falls_back_to_the_identity(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        read_only = api.blob_url("fallback/out", "r")
        view = await run(api, "fallback", {"source": {"script": "echo via identity"},
                                           "outputBlobUri": read_only,
                                           "outputBlobManagedIdentity": SYSTEM})

        assert view["executionState"] == "Succeeded", view
        assert blob_text(api, "fallback/out") == "via identity\n"


async def test_arc_does_not_write_blobs_as_a_managed_identity(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles(None, LINUX_ARC), tmp_path) as api:
        view = await run(api, "arcmi", {"source": {"script": "echo hi"},
                                        "outputBlobUri": plain_url(api, "arc/out"),
                                        "outputBlobManagedIdentity": SYSTEM}, machine=ARC)

    assert view["executionState"] == "Failed"
    assert view["exitCode"] == -101


@pytest.mark.parametrize("identity", [
    {"clientId": "not-a-guid"}, {"clientId": SOME_GUID, "objectId": SOME_GUID}, {"name": "x"},
    "system",
])
async def test_a_malformed_identity_is_refused_at_put(tmp_path: Path, identity: Any) -> None:
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        put = await api.put(VM, "bad", {"source": {"script": "echo"},
                                        "outputBlobManagedIdentity": identity})

    assert put.status_code == 400, put.text
    assert "outputBlobManagedIdentity" in put.json()["error"]["message"]


# ------------------------------------------------------------------------------ scriptUri


async def test_a_script_uri_with_a_sas_is_fetched_and_run(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        upload_script(api, "scripts/big.sh", "#!/bin/bash\necho from the blob\n")
        view = await run(api, "uri", {"source": {"scriptUri": api.blob_url("scripts/big.sh",
                                                                           "r")}})

    assert view["executionState"] == "Succeeded", view
    assert view["output"] == "from the blob\n"


@pytest.mark.parametrize("role", ["Storage Blob Data Reader", "Storage Blob Data Contributor"])
async def test_a_script_uri_is_read_as_the_identity(tmp_path: Path, role: str) -> None:
    async with sandbox_api(fleet_with_roles({"*": role}), tmp_path) as api:
        upload_script(api, "scripts/mi.sh", "echo read as identity\n")
        view = await run(api, "urimi", {"source": {
            "scriptUri": plain_url(api, "scripts/mi.sh"), "scriptUriManagedIdentity": SYSTEM}})

    assert view["executionState"] == "Succeeded", view
    assert view["output"] == "read as identity\n"


async def test_a_script_the_identity_may_not_read_fails_with_100(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles({"*": "none"}), tmp_path) as api:
        upload_script(api, "scripts/mi.sh", "echo never\n")
        view = await run(api, "urino", {"source": {
            "scriptUri": plain_url(api, "scripts/mi.sh"), "scriptUriManagedIdentity": SYSTEM}})

    assert view["executionState"] == "Failed"
    assert view["exitCode"] == -100
    assert "failed to download the script" in view["executionMessage"]
    assert "AuthorizationPermissionMismatch" in view["executionMessage"]


async def test_a_missing_script_blob_fails_with_100(tmp_path: Path) -> None:
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        view = await run(api, "gone", {"source": {
            "scriptUri": api.blob_url("scripts/absent.sh", "r")}})

    assert view["exitCode"] == -100
    assert "BlobNotFound" in view["executionMessage"]


async def test_a_script_uri_off_this_machine_is_refused_without_a_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_http(self: BlobSinks) -> httpx.AsyncClient:
        raise AssertionError("the sandbox tried to reach a remote script URL")

    monkeypatch.setattr(BlobSinks, "_http", no_http)
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        view = await run(api, "remote", {"source": {
            "scriptUri": "https://example.com/install.sh"}})

    assert view["exitCode"] == -100
    assert "example.com" in view["executionMessage"]


async def user_delegation_url(api: Api, blob: str, permission: str) -> str:
    """``blob``'s URL with a user delegation SAS made as ``fleetrun azure setup-output``'s
    runs make them: a key asked of the blob endpoint with the caller's bearer token, signed
    by Microsoft's own SDK."""
    fleet = api.service.fleet
    now = datetime.now(UTC)
    info = (f"<?xml version='1.0' encoding='utf-8'?><KeyInfo><Start>{_utc(now)}</Start>"
            f"<Expiry>{_utc(now + timedelta(hours=1))}</Expiry></KeyInfo>")
    answer = await api.client.post(f"/{fleet.account}/", content=info.encode(),
                                   params={"restype": "service", "comp": "userdelegationkey"},
                                   headers={"x-ms-version": "2026-10-06"})
    assert answer.status_code == 200, answer.text
    xml = ElementTree.fromstring(answer.content)
    key = UserDelegationKey()
    key.signed_oid, key.signed_tid = xml.findtext("SignedOid"), xml.findtext("SignedTid")
    key.signed_start, key.signed_expiry = xml.findtext("SignedStart"), xml.findtext("SignedExpiry")
    key.signed_service, key.signed_version = xml.findtext("SignedService"), xml.findtext(
        "SignedVersion")
    key.value = xml.findtext("Value")
    sas = generate_blob_sas(fleet.account, fleet.containers[0], blob, user_delegation_key=key,
                            permission=permission, expiry=now + timedelta(hours=1))
    return f"{plain_url(api, blob)}?{sas}"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_a_user_delegation_sas_writes_the_output_and_reads_the_script(
    tmp_path: Path,
) -> None:
    """The handler's own writes and script download check a user delegation SAS as the blob
    endpoint does (they once took only account-key SAS: every run of a user-delegation
    setup failed with "Signature did not match")."""
    async with sandbox_api(fleet_with_roles(), tmp_path) as api:
        upload_script(api, "ud/script.sh", "echo from the uploaded script\n")
        view = await run(api, "ud", {
            "source": {"scriptUri": await user_delegation_url(api, "ud/script.sh", "r")},
            "outputBlobUri": await user_delegation_url(api, "ud/out", "racw")})
        assert view["executionState"] == "Succeeded", view
        assert blob_text(api, "ud/out") == "from the uploaded script\n"
        refused = await run(api, "ud-read-only", {
            "source": {"script": "echo never"},
            "outputBlobUri": await user_delegation_url(api, "ud/read-only", "r")})
        assert refused["exitCode"] == -101, refused
        assert "AuthorizationPermissionMismatch" in refused["executionMessage"], refused
