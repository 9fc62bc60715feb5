"""User-delegation SAS: byte-identical to azure-storage-blob's, and the key request's shape."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
from azure.storage.blob import UserDelegationKey as SdkKey
from azure.storage.blob import generate_blob_sas

from core.azure.blob_errors import BlobError
from core.azure.user_delegation import (
    KEY_ACTION,
    SAS_VERSION,
    ContainerAddress,
    UserDelegationKey,
    blob_sas,
    get_user_delegation_key,
    parse_key,
)

KEY_VALUE = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = UserDelegationKey(
    signed_oid="aaaaaaaa-0000-4000-8000-000000000001",
    signed_tid="bbbbbbbb-0000-4000-8000-000000000002",
    signed_start="2026-11-01T10:00:00Z", signed_expiry="2026-11-02T10:00:00Z",
    signed_service="b", signed_version="2026-10-06", value=KEY_VALUE)
EXPIRY = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)
START = datetime(2026, 11, 1, 9, 55, tzinfo=UTC)


def sdk_key(key: UserDelegationKey) -> SdkKey:
    sdk = SdkKey()
    sdk.signed_oid, sdk.signed_tid = key.signed_oid, key.signed_tid
    sdk.signed_start, sdk.signed_expiry = key.signed_start, key.signed_expiry
    sdk.signed_service, sdk.signed_version = key.signed_service, key.signed_version
    sdk.signed_delegated_user_tid = key.signed_delegated_user_tid or None
    sdk.value = key.value
    return sdk


@pytest.mark.parametrize(("url", "blob", "permission", "start"), [
    ("https://fleetout.blob.core.windows.net/fleetrun-output",
     "fleetrun-r1/web-01-abc/stdout.txt", "racw", START),
    ("https://fleetout.blob.core.windows.net/fleetrun-output", "scripts/r1.sh", "r", None),
    ("http://127.0.0.1:10000/devstore/out", "a b/ü.txt", "racw", START),
])
def test_the_sas_equals_the_sdks(url: str, blob: str, permission: str,
                                 start: datetime | None) -> None:
    address = ContainerAddress.of(url)
    ours = blob_sas(KEY, address, blob, permission=permission, expiry=EXPIRY, start=start)
    theirs = generate_blob_sas(
        address.account, address.container, blob, user_delegation_key=sdk_key(KEY),
        permission=permission, expiry=EXPIRY, start=start,
        protocol="https" if address.https else None)
    assert parse_qs(ours) == parse_qs(theirs)
    assert parse_qs(ours)["sv"] == [SAS_VERSION] and parse_qs(ours)["sr"] == ["b"]


def test_a_key_with_a_delegated_tenant_signs_as_the_sdk_does() -> None:
    key = UserDelegationKey(KEY.signed_oid, KEY.signed_tid, KEY.signed_start,
                            KEY.signed_expiry, "b", KEY.signed_version, KEY_VALUE,
                            signed_delegated_user_tid="cccccccc-0000-4000-8000-000000000003")
    address = ContainerAddress.of("https://acct.blob.core.windows.net/c1")
    ours = blob_sas(key, address, "x.txt", permission="r", expiry=EXPIRY)
    theirs = generate_blob_sas("acct", "c1", "x.txt", user_delegation_key=sdk_key(key),
                               permission="r", expiry=EXPIRY, protocol="https")
    assert parse_qs(ours) == parse_qs(theirs)


def test_the_key_value_never_shows_in_repr() -> None:
    assert KEY_VALUE not in repr(KEY)


def test_addresses_of_both_url_styles() -> None:
    public = ContainerAddress.of("https://acct.z12.blob.storage.azure.net/out")
    assert (public.service_url, public.account, public.container) == (
        "https://acct.z12.blob.storage.azure.net/", "acct", "out")
    local = ContainerAddress.of("http://127.0.0.1:10000/devstore/out")
    assert (local.service_url, local.account, local.https) == (
        "http://127.0.0.1:10000/devstore/", "devstore", False)
    assert local.blob_url("scripts/r 1.sh") == "http://127.0.0.1:10000/devstore/out/scripts/r%201.sh"
    with pytest.raises(ValueError):
        ContainerAddress.of("https://acct.blob.core.windows.net/")


KEY_XML = f"""<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>
<SignedOid>{KEY.signed_oid}</SignedOid><SignedTid>{KEY.signed_tid}</SignedTid>
<SignedStart>{KEY.signed_start}</SignedStart><SignedExpiry>{KEY.signed_expiry}</SignedExpiry>
<SignedService>b</SignedService><SignedVersion>2026-10-06</SignedVersion>
<Value>{KEY_VALUE}</Value></UserDelegationKey>"""


async def test_the_key_request_is_a_bearer_post_with_key_info() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=KEY_XML.encode(),
                              headers={"Content-Type": "application/xml"})

    async def bearer() -> str:
        return "entra-token"

    now = datetime.now(UTC)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        key = await get_user_delegation_key(
            http, "https://acct.blob.core.windows.net/", bearer,
            start=now - timedelta(minutes=5), expiry=now + timedelta(hours=2))
    assert key == KEY
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/" and request.url.params["comp"] == "userdelegationkey"
    assert request.url.params["restype"] == "service"
    assert request.headers["Authorization"] == "Bearer entra-token"
    assert request.headers["x-ms-version"] == SAS_VERSION
    body = request.content.decode()
    assert "<KeyInfo><Start>" in body and "<Expiry>" in body and body.endswith("</KeyInfo>")


async def test_a_403_names_the_missing_action() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, headers={"x-ms-error-code": "AuthorizationPermissionMismatch"})

    async def bearer() -> str:
        return "t"

    now = datetime.now(UTC)
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(BlobError) as caught:
            await get_user_delegation_key(http, "https://acct.blob.core.windows.net/", bearer,
                                          start=now, expiry=now + timedelta(hours=1))
    assert KEY_ACTION in str(caught.value) and "Storage Blob Delegator" in str(caught.value)


def test_a_key_answer_without_a_field_is_named() -> None:
    with pytest.raises(ValueError, match="SignedOid"):
        parse_key(b"<UserDelegationKey><Value>x</Value></UserDelegationKey>")
