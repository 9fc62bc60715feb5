"""One append-blob suite, run against the sandbox's blob endpoint and against Azurite.

What both must do alike is tested through ``blob_target``. Where Azurite is known to
differ from real Azure (reading exactly at the end of a blob, error codes for refused
SAS requests), the shared test accepts both answers and a ``sandbox_target`` test pins
down the sandbox's, which follows the real service (reference section 8).
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx
import pytest
from azure.storage.blob import generate_container_sas

from core.sandbox.sas import sign_blob_sas
from tests.sandbox.conftest import BlobTarget, SandboxTarget

APPEND = "comp=appendblock"


def create(http: httpx.Client, target: BlobTarget, blob: str, permissions: str = "racw",
           **headers: str) -> httpx.Response:
    return http.put(target.url(blob, target.sas(blob, permissions)),
                    headers={"x-ms-blob-type": "AppendBlob", **headers})


def append(http: httpx.Client, target: BlobTarget, blob: str, data: bytes,
           permissions: str = "racw", **headers: str) -> httpx.Response:
    url = target.url(blob, f"{APPEND}&{target.sas(blob, permissions)}")
    return http.put(url, content=data, headers=headers)


def get(http: httpx.Client, target: BlobTarget, blob: str, **headers: str) -> httpx.Response:
    return http.get(target.url(blob, target.sas(blob, "r")), headers=headers)


def head(http: httpx.Client, target: BlobTarget, blob: str, **headers: str) -> httpx.Response:
    return http.head(target.url(blob, target.sas(blob, "r")), headers=headers)


@pytest.fixture
def hello(http: httpx.Client, blob_target: BlobTarget, blob_name: str) -> Iterator[str]:
    """A blob holding ``hello world`` in two blocks."""
    assert create(http, blob_target, blob_name).status_code == 201
    assert append(http, blob_target, blob_name, b"hello").status_code == 201
    assert append(http, blob_target, blob_name, b" world").status_code == 201
    yield blob_name


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["x-ms-error-code"] == code
    assert response.headers["x-ms-request-id"]
    if response.request.method != "HEAD":
        assert f"<Code>{code}</Code>" in response.text
        assert "RequestId:" in response.text


# ------------------------------------------------------------------------- create, append


def test_put_blob_creates_an_empty_append_blob(
    http: httpx.Client, blob_target: BlobTarget, blob_name: str
) -> None:
    response = create(http, blob_target, blob_name)

    assert response.status_code == 201
    assert response.headers["ETag"].startswith('"0x')
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["x-ms-request-id"]
    assert response.headers["x-ms-version"]
    assert response.headers["x-ms-request-server-encrypted"] == "true"
    assert response.headers["Date"].endswith("GMT")
    props = head(http, blob_target, blob_name)
    assert props.status_code == 200
    assert props.headers["Content-Length"] == "0"
    assert props.headers["x-ms-blob-type"] == "AppendBlob"
    assert props.headers["x-ms-blob-committed-block-count"] == "0"
    assert props.headers["ETag"] == response.headers["ETag"]


def test_put_blob_with_a_body_is_refused(
    http: httpx.Client, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    response = http.put(url, content=b"xx", headers={"x-ms-blob-type": "AppendBlob"})

    assert response.status_code == 400
    assert head(http, blob_target, blob_name).status_code == 404


def test_if_none_match_star_refuses_to_overwrite(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = create(http, blob_target, hello, **{"If-None-Match": "*"})

    assert_error(response, 409, "BlobAlreadyExists")
    assert head(http, blob_target, hello).headers["Content-Length"] == "11"


def test_append_reports_offsets_and_block_counts(
    http: httpx.Client, blob_target: BlobTarget, blob_name: str
) -> None:
    created = create(http, blob_target, blob_name)
    first = append(http, blob_target, blob_name, b"hello")
    second = append(http, blob_target, blob_name, b" world")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.headers["x-ms-blob-append-offset"] == "0"
    assert second.headers["x-ms-blob-append-offset"] == "5"
    assert first.headers["x-ms-blob-committed-block-count"] == "1"
    assert second.headers["x-ms-blob-committed-block-count"] == "2"
    etags = {created.headers["ETag"], first.headers["ETag"], second.headers["ETag"]}
    assert len(etags) == 3
    assert second.headers["x-ms-request-server-encrypted"] == "true"
    assert get(http, blob_target, blob_name).content == b"hello world"


def test_append_to_a_missing_blob_is_404(
    http: httpx.Client, blob_target: BlobTarget, blob_name: str
) -> None:
    assert_error(append(http, blob_target, blob_name, b"x"), 404, "BlobNotFound")


def test_append_position_condition(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    wrong = append(http, blob_target, hello, b"!", **{"x-ms-blob-condition-appendpos": "3"})
    right = append(http, blob_target, hello, b"!", **{"x-ms-blob-condition-appendpos": "11"})

    assert_error(wrong, 412, "AppendPositionConditionNotMet")
    assert right.status_code == 201
    assert right.headers["x-ms-blob-append-offset"] == "11"


def test_max_size_condition(http: httpx.Client, blob_target: BlobTarget, hello: str) -> None:
    over = append(http, blob_target, hello, b"!!", **{"x-ms-blob-condition-maxsize": "12"})
    fits = append(http, blob_target, hello, b"!", **{"x-ms-blob-condition-maxsize": "12"})

    assert_error(over, 412, "MaxBlobSizeConditionNotMet")
    assert fits.status_code == 201
    assert get(http, blob_target, hello).content == b"hello world!"


def test_recreating_resets_the_blob_and_changes_its_etag(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    before = head(http, blob_target, hello)
    again = create(http, blob_target, hello)
    after = head(http, blob_target, hello)

    assert again.status_code == 201
    assert after.headers["Content-Length"] == "0"
    assert after.headers["x-ms-blob-committed-block-count"] == "0"
    assert after.headers["ETag"] != before.headers["ETag"]
    created_before = parsedate_to_datetime(before.headers["x-ms-creation-time"])
    assert parsedate_to_datetime(after.headers["x-ms-creation-time"]) >= created_before


# ---------------------------------------------------------------------------------- reads


def test_full_read_is_200(http: httpx.Client, blob_target: BlobTarget, hello: str) -> None:
    response = get(http, blob_target, hello)

    assert response.status_code == 200
    assert response.content == b"hello world"
    assert response.headers["Content-Length"] == "11"
    assert response.headers["x-ms-blob-type"] == "AppendBlob"
    assert response.headers["x-ms-blob-committed-block-count"] == "2"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "Content-Range" not in response.headers


@pytest.mark.parametrize("header", ["Range", "x-ms-range"])
def test_ranged_read_with_either_header(
    http: httpx.Client, blob_target: BlobTarget, hello: str, header: str
) -> None:
    response = get(http, blob_target, hello, **{header: "bytes=2-4"})

    assert response.status_code == 206
    assert response.content == b"llo"
    assert response.headers["Content-Range"] == "bytes 2-4/11"
    assert response.headers["Content-Length"] == "3"
    assert response.headers["x-ms-blob-type"] == "AppendBlob"
    assert response.headers["x-ms-creation-time"].endswith("GMT")


def test_x_ms_range_wins_over_range(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = get(http, blob_target, hello, Range="bytes=0-0", **{"x-ms-range": "bytes=6-"})

    assert response.status_code == 206
    assert response.content == b"world"


def test_open_ended_range_reads_to_the_end(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = get(http, blob_target, hello, **{"x-ms-range": "bytes=5-"})

    assert response.status_code == 206
    assert response.content == b" world"
    assert response.headers["Content-Range"] == "bytes 5-10/11"


def test_range_end_past_the_end_is_cut(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = get(http, blob_target, hello, Range="bytes=6-100")

    assert response.status_code == 206
    assert response.content == b"world"
    assert response.headers["Content-Range"] == "bytes 6-10/11"


def test_tailing_cursor_picks_up_new_blocks(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    cursor = len(get(http, blob_target, hello, **{"x-ms-range": "bytes=0-"}).content)
    append(http, blob_target, hello, b"\nmore")
    response = get(http, blob_target, hello, **{"x-ms-range": f"bytes={cursor}-"})

    assert response.content == b"\nmore"
    assert response.headers["Content-Range"] == "bytes 11-15/16"


def test_conditional_ranged_reads(http: httpx.Client, blob_target: BlobTarget, hello: str
                                  ) -> None:
    """A tailer's cheap poll: a ranged GET with ``If-None-Match`` on the ETag it last saw is
    304 with no body while the blob is unchanged, and the new bytes once it grew."""
    etag = head(http, blob_target, hello).headers["ETag"]

    unchanged = get(http, blob_target, hello, **{"x-ms-range": "bytes=6-",
                                                 "If-None-Match": etag})
    assert append(http, blob_target, hello, b"!").status_code == 201
    grown = get(http, blob_target, hello, **{"x-ms-range": "bytes=11-",
                                             "If-None-Match": etag})
    stale = get(http, blob_target, hello, **{"If-Match": etag})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert grown.status_code == 206
    assert grown.content == b"!"
    assert grown.headers["ETag"] != etag
    assert_error(stale, 412, "ConditionNotMet")


def test_read_past_the_end_is_416(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = get(http, blob_target, hello, **{"x-ms-range": "bytes=12-"})

    assert_error(response, 416, "InvalidRange")
    assert response.headers["Content-Range"] == "bytes */11"


def no_new_data(response: httpx.Response, size: int) -> bool:
    """Real Azure answers 416 at the end; Azurite answers 206 with nothing in it."""
    if response.status_code == 416:
        return response.headers["Content-Range"] == f"bytes */{size}"
    return response.status_code == 206 and response.content == b""


def test_read_exactly_at_the_end_has_no_new_data(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = get(http, blob_target, hello, **{"x-ms-range": "bytes=11-"})

    assert no_new_data(response, 11), (response.status_code, response.headers)


def test_range_on_an_empty_blob_has_no_data(
    http: httpx.Client, blob_target: BlobTarget, blob_name: str
) -> None:
    create(http, blob_target, blob_name)

    at_start = get(http, blob_target, blob_name, **{"x-ms-range": "bytes=0-"})
    further = get(http, blob_target, blob_name, **{"x-ms-range": "bytes=5-"})

    assert no_new_data(at_start, 0), (at_start.status_code, at_start.headers)
    assert_error(further, 416, "InvalidRange")
    assert further.headers["Content-Range"] == "bytes */0"


def test_head_reports_properties(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    response = head(http, blob_target, hello)

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Content-Length"] == "11"
    assert response.headers["x-ms-blob-type"] == "AppendBlob"
    assert response.headers["x-ms-blob-committed-block-count"] == "2"
    assert response.headers["x-ms-blob-sealed"] == "false"
    assert response.headers["ETag"].startswith('"0x')
    assert response.headers["Last-Modified"].endswith("GMT")
    assert response.headers["x-ms-creation-time"].endswith("GMT")


def test_missing_blob_is_404_on_get_and_head(
    http: httpx.Client, blob_target: BlobTarget, blob_name: str
) -> None:
    got = get(http, blob_target, blob_name)
    headed = head(http, blob_target, blob_name)

    assert_error(got, 404, "BlobNotFound")
    assert_error(headed, 404, "BlobNotFound")
    assert headed.content == b""


def test_missing_container_is_404(http: httpx.Client, blob_target: BlobTarget) -> None:
    sas = blob_target.sas("b", "r", container="nosuchcontainer")
    response = http.get(blob_target.url("b", sas, container="nosuchcontainer"))

    assert_error(response, 404, "ContainerNotFound")


# ------------------------------------------------------------------------------------ SAS


def test_read_only_sas_cannot_append_or_create(
    http: httpx.Client, blob_target: BlobTarget, hello: str, blob_name: str
) -> None:
    assert_error(append(http, blob_target, hello, b"x", "r"), 403,
                 "AuthorizationPermissionMismatch")
    other = blob_name + ".new"
    assert_error(create(http, blob_target, other, "r"), 403, "AuthorizationPermissionMismatch")


def test_create_permission_makes_new_blobs_but_only_write_overwrites(
    http: httpx.Client, blob_target: BlobTarget, hello: str, blob_name: str
) -> None:
    assert create(http, blob_target, blob_name + ".new", "c").status_code == 201
    assert_error(create(http, blob_target, hello, "c"), 403, "AuthorizationPermissionMismatch")
    assert create(http, blob_target, hello, "w").status_code == 201


def test_add_permission_appends(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    assert append(http, blob_target, hello, b"!", "a").status_code == 201


def test_container_sas_covers_every_blob_in_it(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    sas = generate_container_sas(
        blob_target.account, blob_target.container, account_key=blob_target.key,
        permission="r", expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    response = http.get(blob_target.url(hello, sas))

    assert response.status_code == 200
    assert response.content == b"hello world"


def test_request_without_sas_is_refused(
    http: httpx.Client, blob_target: BlobTarget, hello: str
) -> None:
    assert http.get(blob_target.url(hello)).status_code == 403
    assert http.put(blob_target.url(hello), headers={"x-ms-blob-type": "AppendBlob"},
                    content=b"").status_code == 403


@pytest.mark.parametrize("tamper", ["permissions", "signature", "other blob", "expired"])
def test_bad_sas_is_refused(
    http: httpx.Client, blob_target: BlobTarget, hello: str, tamper: str
) -> None:
    sas = blob_target.sas(hello, "r")
    if tamper == "permissions":
        sas = sas.replace("sp=r", "sp=racw")
    elif tamper == "signature":
        sas = sas.replace("sig=", "sig=AAAA")
    elif tamper == "other blob":
        sas = blob_target.sas(hello + ".other", "r")
    else:
        sas = blob_target.sas(hello, "r", expiry=datetime.now(UTC) - timedelta(minutes=1))
    response = http.get(blob_target.url(hello, sas))

    assert response.status_code == 403
    assert response.headers["x-ms-error-code"] in ("AuthenticationFailed", "AuthorizationFailure")


@pytest.mark.parametrize("version", ["2015-04-05", "2018-11-09", "2020-12-06", "2025-11-05"])
def test_sas_signed_by_the_sandbox_works(
    http: httpx.Client, blob_target: BlobTarget, hello: str, version: str
) -> None:
    """Our signer, checked by an independent verifier (Azurite), old layouts included."""
    sas = sign_blob_sas(
        blob_target.account, blob_target.key, blob_target.container, hello, "r",
        datetime.now(UTC) + timedelta(hours=1), start=datetime.now(UTC) - timedelta(hours=1),
        version=version, content_type="text/plain",
    )
    response = http.get(blob_target.url(hello, sas))

    assert response.status_code == 200, response.text
    assert response.content == b"hello world"


# ------------------------------------------------------------------------- sandbox only


def test_sandbox_reading_exactly_at_the_end_is_416(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    empty = get(http, sandbox_target, blob_name, **{"x-ms-range": "bytes=0-"})
    append(http, sandbox_target, blob_name, b"hello")
    at_end = get(http, sandbox_target, blob_name, Range="bytes=5-")

    assert_error(empty, 416, "InvalidRange")
    assert empty.headers["Content-Range"] == "bytes */0"
    assert_error(at_end, 416, "InvalidRange")
    assert at_end.headers["Content-Range"] == "bytes */5"


def test_sandbox_error_body_is_azure_xml(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    response = get(http, sandbox_target, blob_name)

    assert response.headers["Content-Type"] == "application/xml"
    text = response.text
    assert text.startswith('<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code>')
    request_id = response.headers["x-ms-request-id"]
    assert f"The specified blob does not exist.\nRequestId:{request_id}\nTime:" in text
    assert text.endswith("Z</Message></Error>")


def test_sandbox_refusal_codes(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    target = sandbox_target

    missing = http.get(target.url(blob_name))
    tampered = http.get(target.url(blob_name, target.sas(blob_name, "r").replace("sp=r", "sp=rw")))
    expired = http.get(target.url(blob_name, target.sas(
        blob_name, "r", expiry=datetime.now(UTC) - timedelta(minutes=1))))
    other = http.get(target.url(blob_name, target.sas("another-blob", "r")))

    assert_error(missing, 403, "NoAuthenticationInformation")
    assert_error(tampered, 403, "AuthenticationFailed")
    assert "Signature did not match" in tampered.text
    assert_error(expired, 403, "AuthenticationFailed")
    assert "Signature not valid in the specified time frame" in expired.text
    assert_error(other, 403, "AuthenticationFailed")
    assert f"/blob/{target.account}/{target.container}/{blob_name}" in other.text


def test_sandbox_https_only_sas_refuses_http(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    t = sandbox_target
    create(http, t, blob_name)
    sas = sign_blob_sas(t.account, t.key, t.container, blob_name, "r",
                        datetime.now(UTC) + timedelta(hours=1), protocol="https")

    assert_error(http.get(t.url(blob_name, sas)), 403, "AuthorizationProtocolMismatch")


def test_sandbox_echoes_x_ms_version_and_refuses_unknown_ones(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    url = sandbox_target.sas_url(blob_name, "r")

    old = http.head(url, headers={"x-ms-version": "2019-07-07"})
    too_new = http.get(url, headers={"x-ms-version": "2099-01-01"})
    garbage = http.get(url, headers={"x-ms-version": "latest"})

    assert old.headers["x-ms-version"] == "2019-07-07"
    assert "x-ms-blob-sealed" not in old.headers
    assert "x-ms-creation-time" in old.headers
    assert_error(too_new, 400, "InvalidHeaderValue")
    assert "<HeaderName>x-ms-version</HeaderName>" in too_new.text
    assert_error(garbage, 400, "InvalidHeaderValue")


def test_sandbox_without_x_ms_version_uses_the_sas_version(
    sandbox_target: SandboxTarget, blob_name: str
) -> None:
    t = sandbox_target
    t.store.put_append_blob(t.account, t.container, blob_name)
    sas = sign_blob_sas(t.account, t.key, t.container, blob_name, "r",
                        datetime.now(UTC) + timedelta(hours=1), version="2019-02-02")
    sdk_sas = t.sas(blob_name, "r")  # the SDK signs with its newest version, which we know

    with httpx.Client() as bare:
        old = bare.head(t.url(blob_name, sas))
        newest = bare.head(t.url(blob_name, sdk_sas))

    assert old.headers["x-ms-version"] == "2019-02-02"
    assert "x-ms-blob-sealed" not in old.headers
    assert newest.headers["x-ms-version"] == "2026-10-06"


def test_sandbox_seal_stops_appends(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    t = sandbox_target
    create(http, t, blob_name)
    append(http, t, blob_name, b"done")
    sealed = http.put(t.url(blob_name, f"comp=seal&{t.sas(blob_name, 'racw')}"))

    assert sealed.status_code == 200
    assert sealed.headers["x-ms-blob-sealed"] == "true"
    assert_error(append(http, t, blob_name, b"more"), 409, "BlobIsSealed")
    assert head(http, t, blob_name).headers["x-ms-blob-sealed"] == "true"
    assert get(http, t, blob_name).content == b"done"


def test_sandbox_recreate_changes_creation_time(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    before = head(http, sandbox_target, blob_name).headers["x-ms-creation-time"]
    sandbox_target.clock.advance(2)
    create(http, sandbox_target, blob_name)
    after = head(http, sandbox_target, blob_name).headers["x-ms-creation-time"]

    assert parsedate_to_datetime(after) - parsedate_to_datetime(before) >= timedelta(seconds=2)


def test_sandbox_block_size_limit_depends_on_version(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    block = b"x" * (4 * 1024 * 1024 + 1)

    old = append(http, sandbox_target, blob_name, block, **{"x-ms-version": "2021-12-02"})
    new = append(http, sandbox_target, blob_name, block, **{"x-ms-version": "2022-11-02"})

    assert_error(old, 413, "RequestBodyTooLarge")
    assert "<MaxLimit>4194304</MaxLimit>" in old.text
    assert new.status_code == 201


def test_sandbox_append_needs_content_length(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    url = sandbox_target.url(blob_name, f"{APPEND}&{sandbox_target.sas(blob_name, 'racw')}")

    chunked = http.put(url, content=iter([b"no ", b"length"]))
    empty = http.put(url, content=b"")

    assert_error(chunked, 411, "MissingContentLengthHeader")
    assert_error(empty, 400, "InvalidHeaderValue")


def test_sandbox_content_md5_is_checked_and_returned(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    md5 = b64encode(hashlib.md5(b"data").digest()).decode()

    ok = append(http, sandbox_target, blob_name, b"data", **{"Content-MD5": md5})
    bad = append(http, sandbox_target, blob_name, b"atad", **{"Content-MD5": md5})

    assert ok.headers["Content-MD5"] == md5
    assert_error(bad, 400, "Md5Mismatch")


def test_sandbox_stores_append_and_block_blobs_only(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    response = http.put(sandbox_target.sas_url(blob_name), content=b"x",
                        headers={"x-ms-blob-type": "PageBlob"})

    assert_error(response, 400, "InvalidHeaderValue")
    assert "AppendBlob or BlockBlob" in response.text
    assert "<HeaderName>x-ms-blob-type</HeaderName>" in response.text


def test_sandbox_refuses_container_operations(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    t = sandbox_target
    sas = generate_container_sas(t.account, "newcontainer", account_key=t.key,
                                 permission="racwdl", expiry=datetime.now(UTC) + timedelta(hours=1))
    response = http.put(f"{t.endpoint}/newcontainer?restype=container&{sas}")

    assert_error(response, 403, "AuthorizationPermissionMismatch")
    assert "containers come from its configuration" in response.text


def test_sandbox_conditional_reads(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    create(http, sandbox_target, blob_name)
    etag = append(http, sandbox_target, blob_name, b"abc").headers["ETag"]

    unchanged = get(http, sandbox_target, blob_name, **{"If-None-Match": etag})
    stale = get(http, sandbox_target, blob_name, **{"If-Match": '"0x1"'})

    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert_error(stale, 412, "ConditionNotMet")


def test_sandbox_unknown_verbs_and_operations(
    http: httpx.Client, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    url = sandbox_target.sas_url(blob_name)

    refused = http.patch(url)
    assert_error(refused, 405, "UnsupportedHttpVerb")
    assert refused.headers["Allow"] == "GET, HEAD, PUT, DELETE"
    assert_error(http.put(url.replace("?", "?comp=block&")), 400, "InvalidQueryParameterValue")


def test_sandbox_blob_names_are_percent_decoded(
    http: httpx.Client, sandbox_target: SandboxTarget
) -> None:
    name = "dir/with space+plus.txt"
    t = sandbox_target
    sas = t.sas(name, "racw")
    response = http.put(f"{t.endpoint}/{t.container}/{quote(name)}?{sas}",
                        headers={"x-ms-blob-type": "AppendBlob"})

    assert response.status_code == 201, response.text
    assert name in t.store.blob_names(t.account, t.container)
