"""Microsoft's ``azure-storage-blob`` at its default x-ms-version against the blob endpoint.

Real HTTP, no ``api_version`` pinned: whatever the installed SDK sends by default
(2026-10-06 for 12.31.1) must be served. Each test runs against the sandbox and against
Azurite (``blob_target``), so the sandbox is held to what the SDK and the emulator agree on.
Authorisation is a container SAS made by the SDK from the account key, as a user's
``setup-output`` SAS would be.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobType, ContainerClient, generate_container_sas
from azure.storage.blob._shared.constants import X_MS_VERSION

from tests.sandbox.conftest import BlobTarget, SandboxTarget


def container_client(target: BlobTarget, permissions: str = "racwd") -> ContainerClient:
    sas = generate_container_sas(
        target.account, target.container, account_key=target.key, permission=permissions,
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return ContainerClient.from_container_url(f"{target.endpoint}/{target.container}?{sas}")


@pytest.fixture
def blob(blob_target: BlobTarget) -> BlobClient:
    return container_client(blob_target).get_blob_client(f"sdk/{uuid.uuid4().hex}/script.sh")


def test_the_sdk_sends_its_newest_version_by_default(
    sandbox_target: SandboxTarget,
) -> None:
    blob = container_client(sandbox_target).get_blob_client(f"sdk/{uuid.uuid4().hex}")
    seen: list[str] = []

    blob.upload_blob(b"x", raw_response_hook=lambda r: seen.append(
        r.http_response.headers["x-ms-version"]))

    assert X_MS_VERSION == "2026-10-06"
    assert seen == [X_MS_VERSION]


def test_a_block_blob_uploads_downloads_and_reads_ranges(blob: BlobClient) -> None:
    script = b"#!/bin/sh\n" + b"echo line\n" * 1000

    uploaded = blob.upload_blob(script, blob_type=BlobType.BLOCKBLOB)
    props = blob.get_blob_properties()

    assert uploaded["etag"] == props.etag
    assert props.size == len(script)
    assert props.blob_type == BlobType.BLOCKBLOB
    assert bytes(props.content_settings.content_md5 or b"") == uploaded["content_md5"]
    assert blob.download_blob().readall() == script
    assert blob.download_blob(offset=10, length=5).readall() == script[10:15]
    assert blob.download_blob(offset=len(script) - 4).readall() == script[-4:]


def test_upload_without_overwrite_refuses_an_existing_blob(blob: BlobClient) -> None:
    blob.upload_blob(b"first")

    with pytest.raises(ResourceExistsError):
        blob.upload_blob(b"second")
    blob.upload_blob(b"second", overwrite=True)

    assert blob.download_blob().readall() == b"second"


def test_an_append_blob_grows_and_reads_back_in_ranges(blob: BlobClient) -> None:
    blob.create_append_blob()
    first = blob.append_block(b"hello ")
    second = blob.append_block(b"world")

    assert (first["blob_append_offset"], second["blob_append_offset"]) == ("0", "6")
    assert blob.download_blob().readall() == b"hello world"
    assert blob.download_blob(offset=6, length=5).readall() == b"world"
    assert blob.get_blob_properties().blob_type == BlobType.APPENDBLOB


def test_an_empty_blob_downloads_as_nothing(blob: BlobClient) -> None:
    blob.create_append_blob()

    assert blob.download_blob().readall() == b""


def test_append_block_on_a_block_blob_is_refused(blob: BlobClient) -> None:
    blob.upload_blob(b"block")

    with pytest.raises(HttpResponseError) as caught:
        blob.append_block(b"more")

    assert caught.value.status_code == 409
    assert caught.value.error_code == "InvalidBlobType"


def test_delete_removes_the_blob(blob: BlobClient) -> None:
    blob.upload_blob(b"gone soon")

    blob.delete_blob()

    assert not blob.exists()
    with pytest.raises(ResourceNotFoundError):
        blob.download_blob()
    with pytest.raises(ResourceNotFoundError):
        blob.delete_blob()


def test_conditional_requests_follow_the_etag(blob: BlobClient) -> None:
    old = blob.upload_blob(b"v1")["etag"]
    blob.upload_blob(b"v2", overwrite=True)

    with pytest.raises(ResourceModifiedError):
        blob.download_blob(etag=old, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):
        blob.delete_blob(etag=old, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):
        blob.upload_blob(b"v3", overwrite=True, etag=old,
                         match_condition=MatchConditions.IfNotModified)
    assert blob.download_blob().readall() == b"v2"


def test_date_conditions(blob: BlobClient) -> None:
    blob.upload_blob(b"dated")
    later = datetime.now(UTC) + timedelta(hours=1)
    earlier = datetime.now(UTC) - timedelta(hours=1)

    with pytest.raises(ResourceModifiedError):
        blob.download_blob(if_unmodified_since=earlier)
    with pytest.raises(ResourceModifiedError):
        blob.delete_blob(if_modified_since=later)
    assert blob.download_blob(if_modified_since=earlier).readall() == b"dated"


def test_a_sas_without_delete_cannot_delete(blob_target: BlobTarget) -> None:
    name = f"sdk/{uuid.uuid4().hex}"
    container_client(blob_target).get_blob_client(name).upload_blob(b"kept")
    reader = container_client(blob_target, "racw").get_blob_client(name)

    with pytest.raises(HttpResponseError) as caught:
        reader.delete_blob()

    assert caught.value.status_code == 403
    assert reader.download_blob().readall() == b"kept"


@pytest.mark.parametrize("version", ["2099-01-01", "2014-02-14", "latest"])
def test_sandbox_refuses_unknown_versions_in_azures_shape(
    sandbox_target: SandboxTarget, version: str
) -> None:
    url = container_client(sandbox_target).get_blob_client("any").url

    response = httpx.get(url, headers={"x-ms-version": version})

    assert response.status_code == 400
    assert response.headers["x-ms-error-code"] == "InvalidHeaderValue"
    assert "<HeaderName>x-ms-version</HeaderName>" in response.text
    assert f"<HeaderValue>{version}</HeaderValue>" in response.text


def test_put_blob_and_delete_blob_answer_as_the_reference_says(
    blob_target: BlobTarget, http: httpx.Client
) -> None:
    """Reference section 4 (Put Blob for a block blob) and Delete Blob, at 2026-10-06."""
    name = f"raw/{uuid.uuid4().hex}/big.sh"
    url = blob_target.sas_url(name, "racwd")
    headers = {"x-ms-version": "2026-10-06", "x-ms-blob-type": "BlockBlob",
               "x-ms-blob-content-type": "text/x-shellscript"}

    put = http.put(url, content=b"echo hi\n", headers=headers)
    again = http.put(url, content=b"echo no\n", headers={**headers, "If-None-Match": "*"})
    got = http.get(url, headers={"x-ms-version": "2026-10-06"})
    deleted = http.delete(url, headers={"x-ms-version": "2026-10-06"})
    gone = http.head(url, headers={"x-ms-version": "2026-10-06"})

    assert put.status_code == 201, put.text
    for header in ("ETag", "Last-Modified", "Content-MD5", "x-ms-request-id", "Date"):
        assert put.headers[header], header
    assert put.headers["x-ms-request-server-encrypted"] == "true"
    if isinstance(blob_target, SandboxTarget):
        # Azurite (run with --skipApiVersionCheck) echoes its own newest version instead.
        assert put.headers["x-ms-version"] == "2026-10-06"
    assert again.status_code == 409 and again.headers["x-ms-error-code"] == "BlobAlreadyExists"
    assert got.content == b"echo hi\n"
    assert got.headers["x-ms-blob-type"] == "BlockBlob"
    assert got.headers["Content-Type"] == "text/x-shellscript"
    assert got.headers["Content-MD5"] == put.headers["Content-MD5"]
    assert deleted.status_code == 202 and deleted.headers["x-ms-request-id"]
    assert gone.status_code == 404 and gone.headers["x-ms-error-code"] == "BlobNotFound"
