"""Microsoft Entra on the blob endpoint, through Microsoft's azure-storage-blob at its default
x-ms-version: bearer tokens, Get User Delegation Key, and the user delegation SAS a client
makes from it (what ``fleetrun azure setup-output`` hands to each run), with the refusals a
user meets when a key or SAS is wrong.

The SDK sends a token credential over HTTPS only, so the sandbox serves HTTPS here with its
own self-signed certificate (``fleetrun sandbox serve --tls``).
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob import (
    BlobClient,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
    generate_container_sas,
)
from azure.storage.blob._shared.constants import X_MS_VERSION

from core.sandbox.background import BackgroundSandbox
from core.sandbox.tls import ensure_certificate
from tests.sandbox.arm_client import make_fleet

ACCOUNT = "fleetrunsandbox"
CONTAINER = "fleetrun"
ENGINEER_TOKEN = "engineer-token-0123456789"


class Token:
    """A token credential that returns a fixed bearer token (the sandbox's or a principal's)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(datetime.now(UTC).timestamp()) + 3600)


@dataclass
class Served:
    base: str
    token: str
    verify: str

    def service(self, token: str | None = None) -> BlobServiceClient:
        return BlobServiceClient(f"{self.base}/{ACCOUNT}", credential=Token(token or self.token),
                                 connection_verify=self.verify)

    def blob_with_sas(self, name: str, sas: str) -> BlobClient:
        return BlobClient.from_blob_url(f"{self.base}/{ACCOUNT}/{CONTAINER}/{name}?{sas}",
                                        connection_verify=self.verify)

    def key(self, hours: float = 2) -> UserDelegationKey:
        now = datetime.now(UTC)
        return self.service().get_user_delegation_key(now - timedelta(minutes=5),
                                                      now + timedelta(hours=hours))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tls = ensure_certificate(Path(tmp_path_factory.mktemp("tls")))
    fleet = make_fleet({"name": "vm1", "kind": "vm", "os": "linux"},
                       principals=[{"name": "engineer", "token": ENGINEER_TOKEN}])
    sandbox = BackgroundSandbox(fleet, tls=tls)
    base = sandbox.start()
    try:
        yield Served(base, sandbox.token, str(tls.certificate))
    finally:
        sandbox.stop()


def blob_name() -> str:
    return f"runs/{uuid.uuid4().hex}/web-01.out"


def sas_for(name: str, key: UserDelegationKey, permission: str = "racwd",
            expiry: datetime | None = None, start: datetime | None = None) -> str:
    return generate_blob_sas(ACCOUNT, CONTAINER, name, user_delegation_key=key,
                             permission=permission, start=start,
                             expiry=expiry or datetime.now(UTC) + timedelta(hours=1))


def test_a_user_delegation_key_names_its_owner_and_the_current_version(served: Served) -> None:
    key = served.key()
    other = served.service(ENGINEER_TOKEN).get_user_delegation_key(
        datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1))

    assert key.signed_version == X_MS_VERSION == "2026-10-06"
    assert key.signed_service == "b"
    assert key.signed_oid != other.signed_oid  # each principal is its own object
    assert key.signed_tid == other.signed_tid
    assert key.value


def test_a_user_delegation_sas_writes_appends_reads_and_deletes(served: Served) -> None:
    name = blob_name()
    blob = served.blob_with_sas(name, sas_for(name, served.key()))

    blob.create_append_blob()
    blob.append_block(b"line 1\n")
    blob.append_block(b"line 2\n")

    assert blob.download_blob().readall() == b"line 1\nline 2\n"
    assert blob.download_blob(offset=7).readall() == b"line 2\n"
    blob.delete_blob()
    with pytest.raises(ResourceNotFoundError):
        blob.download_blob()


def test_a_read_only_user_delegation_sas_reads_but_cannot_write(served: Served) -> None:
    name = blob_name()
    key = served.key()
    served.blob_with_sas(name, sas_for(name, key)).upload_blob(b"script")
    reader = served.blob_with_sas(name, sas_for(name, key, permission="r"))

    assert reader.download_blob().readall() == b"script"
    with pytest.raises(HttpResponseError) as refused:
        reader.upload_blob(b"other", overwrite=True)
    assert refused.value.error_code == "AuthorizationPermissionMismatch"


def test_a_bearer_token_reads_and_writes_blobs(served: Served) -> None:
    blob = served.service().get_blob_client(CONTAINER, blob_name())

    blob.upload_blob(b"#!/bin/sh\necho hi\n")

    assert blob.download_blob().readall() == b"#!/bin/sh\necho hi\n"
    blob.delete_blob()


def test_a_tampered_signature_is_refused(served: Served) -> None:
    name = blob_name()
    sas = sas_for(name, served.key())
    signature = sas.rsplit("sig=", 1)[1]
    tampered = sas.replace(signature, ("A" if signature[0] != "A" else "B") + signature[1:])

    with pytest.raises(ClientAuthenticationError) as refused:
        served.blob_with_sas(name, tampered).upload_blob(b"x")
    assert refused.value.error_code == "AuthenticationFailed"


def test_a_sas_for_another_blob_is_refused(served: Served) -> None:
    sas = sas_for("runs/one.out", served.key())

    with pytest.raises(ClientAuthenticationError) as refused:
        served.blob_with_sas("runs/other.out", sas).upload_blob(b"x")
    assert refused.value.error_code == "AuthenticationFailed"


def test_an_expired_user_delegation_sas_is_refused(served: Served) -> None:
    name = blob_name()
    now = datetime.now(UTC)
    sas = sas_for(name, served.key(), start=now - timedelta(hours=2),
                  expiry=now - timedelta(minutes=1))

    with pytest.raises(ClientAuthenticationError) as refused:
        served.blob_with_sas(name, sas).upload_blob(b"x")
    assert refused.value.error_code == "AuthenticationFailed"
    assert "time frame" in str(refused.value)


def test_a_key_from_another_sandbox_does_not_sign(served: Served) -> None:
    key = served.key()
    forged = UserDelegationKey()
    for field in ("signed_oid", "signed_tid", "signed_start", "signed_expiry",
                  "signed_service", "signed_version"):
        setattr(forged, field, getattr(key, field))
    forged.value = "Zm9yZ2VkLWtleS12YWx1ZS1ub3QtdGhlLXNhbmRib3hzIQ=="
    name = blob_name()

    with pytest.raises(ClientAuthenticationError) as refused:
        served.blob_with_sas(name, sas_for(name, forged)).upload_blob(b"x")
    assert refused.value.error_code == "AuthenticationFailed"


def test_a_key_longer_than_seven_days_is_refused(served: Served) -> None:
    now = datetime.now(UTC)

    with pytest.raises(HttpResponseError) as refused:
        served.service().get_user_delegation_key(now, now + timedelta(days=8))
    assert refused.value.status_code == 400
    with pytest.raises(HttpResponseError) as backwards:
        served.service().get_user_delegation_key(now + timedelta(hours=2), now + timedelta(hours=1))
    assert backwards.value.status_code == 400


def https_client(served: Served) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=served.verify), trust_env=False)


def key_info(start: str | None = None, expiry: str | None = None) -> str:
    now = datetime.now(UTC)
    start = start or f"{now:%Y-%m-%dT%H:%M:%SZ}"
    expiry = expiry or f"{now + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}"
    return (f'<?xml version="1.0" encoding="utf-8"?><KeyInfo><Start>{start}</Start>'
            f"<Expiry>{expiry}</Expiry></KeyInfo>")


def post_key_request(served: Served, headers: dict[str, str], query: str = "",
                     body: str | None = None) -> httpx.Response:
    body = body or key_info()
    with https_client(served) as client:
        return client.post(f"{served.base}/{ACCOUNT}/?restype=service&comp=userdelegationkey"
                           f"{query}", content=body,
                           headers={"x-ms-version": X_MS_VERSION, **headers})


def test_a_user_delegation_key_takes_a_bearer_token_only(served: Served) -> None:
    sas = generate_container_sas(ACCOUNT, CONTAINER, user_delegation_key=served.key(),
                                 permission="racwl",
                                 expiry=datetime.now(UTC) + timedelta(hours=1))

    with_sas = post_key_request(served, {}, "&" + sas)
    stranger = post_key_request(served, {"Authorization": "Bearer not-a-token-of-anyone"})
    with_token = post_key_request(served, {"Authorization": f"Bearer {served.token}"})

    assert with_sas.status_code == 403
    assert with_sas.headers["x-ms-error-code"] == "AuthenticationFailed"
    assert stranger.status_code == 401
    assert stranger.headers["x-ms-error-code"] == "InvalidAuthenticationInfo"
    assert "WWW-Authenticate" in stranger.headers
    assert with_token.status_code == 200, with_token.text
    assert "<UserDelegationKey>" in with_token.text


def test_bearer_tokens_need_version_2017_11_09(served: Served) -> None:
    url = f"{served.base}/{ACCOUNT}/{CONTAINER}/{blob_name()}"
    with https_client(served) as client:
        old = client.get(url, headers={"Authorization": f"Bearer {served.token}",
                                       "x-ms-version": "2017-07-29"})

    assert old.status_code == 403
    assert old.headers["x-ms-error-code"] == "AuthenticationFailed"
    assert "not supported in this version" in old.text


def test_the_account_key_sas_still_works(served: Served) -> None:
    # The sandbox's own key SAS (what earlier setups and Azurite users pass) is unchanged.
    with https_client(served) as client:
        anonymous = client.get(f"{served.base}/{ACCOUNT}/{CONTAINER}/{blob_name()}",
                               headers={"x-ms-version": X_MS_VERSION})

    assert anonymous.status_code == 403
    assert anonymous.headers["x-ms-error-code"] == "NoAuthenticationInformation"


@pytest.mark.parametrize(("case", "code"), [
    ("expiry-not-a-date", "InvalidXmlNodeValue"),
    ("start-out-of-range", "InvalidXmlNodeValue"),
    ("unclosed-xml", "InvalidXmlDocument"),
    ("not-a-key-info", "InvalidXmlDocument"),
])
def test_a_key_request_with_bad_dates_or_xml_is_400(served: Served, case: str, code: str) -> None:
    body = {"expiry-not-a-date": key_info(expiry="next tuesday"),
            "start-out-of-range": key_info(start="2026-13-45T99:00:00Z"),
            "unclosed-xml": "<KeyInfo><Start>",
            "not-a-key-info": "<Other/>"}[case]

    answer = post_key_request(served, {"Authorization": f"Bearer {served.token}"}, body=body)

    assert answer.status_code == 400, answer.text
    assert answer.headers["x-ms-error-code"] == code
