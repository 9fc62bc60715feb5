"""AppendBlobClient against the sandbox's blob endpoint and Azurite (``blob_target`` runs each
test on both), plus what only a scripted server can show (bearer headers, nonsense answers).
"""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from core.azure.blob import (
    DEFAULT_VERSION,
    MAX_APPEND_BLOCK,
    AppendBlobClient,
    BlobError,
    blob_url,
    redact_sas,
)
from tests.azure.conftest import FAST_RETRY
from tests.azure.faulty import Fault, FaultyTransport, is_append, is_create, is_read
from tests.blob_targets import BlobTarget


def signature(url: str) -> str:
    return dict(parse_qsl(urlsplit(url).query))["sig"]


def is_append_exchange(url: str) -> bool:
    return "comp=appendblock" in url


# ----------------------------------------------------------------- create, append, read


async def test_create_append_read_round_trip(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)

    await blobs.create(url)
    first = await blobs.append(url, b"hello ")
    second = await blobs.append(url, b"world")
    whole = await blobs.read(url, 0)
    tail = await blobs.read(url, 6)
    props = await blobs.properties(url)

    assert (first, second) == (0, 6)
    assert whole.data == b"hello world"
    assert (whole.size, whole.exists, whole.blocks) == (11, True, 2)
    assert whole.etag and whole.created is not None
    assert tail.data == b"world"
    assert (props.size, props.etag, props.created) == (11, whole.etag, whole.created)
    assert {exchange.headers["x-ms-version"] for exchange in wire.log} == {DEFAULT_VERSION}


async def test_create_overwrites_with_an_empty_blob(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"old run")

    await blobs.create(url)
    offset = await blobs.append(url, b"new")

    assert offset == 0
    assert (await blobs.read(url, 0)).data == b"new"


async def test_a_newer_version_is_sent_when_asked(
    wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    async with httpx.AsyncClient(transport=wire) as http:
        newer = AppendBlobClient(http, version="2025-11-05", retry=FAST_RETRY)
        await newer.create(url)
        await newer.append(url, b"x" * 10)
        found = await newer.read(url, 0)

    assert found.data == b"x" * 10
    assert {exchange.headers["x-ms-version"] for exchange in wire.log} == {"2025-11-05"}


async def test_every_byte_value_and_blocks_over_4_mib_round_trip(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    data = bytes(range(256)) * 8 + random.Random(7).randbytes(2 * MAX_APPEND_BLOCK + 12345)
    await blobs.create(url)

    offset = await blobs.append(url, data)
    found = await blobs.read(url, 0)

    blocks = [int(e.headers["content-length"]) for e in wire.log if is_append_exchange(e.url)]
    assert offset == 0
    assert found.data == data
    assert found.blocks == 3
    assert blocks == [MAX_APPEND_BLOCK, MAX_APPEND_BLOCK, len(data) - 2 * MAX_APPEND_BLOCK]


async def test_empty_append_sends_nothing_and_returns_the_size(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"abc")
    before = len(wire.log)

    assert await blobs.append(url, b"") == 3
    assert len(wire.log) == before


async def test_appending_to_a_missing_blob_names_the_code(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    with pytest.raises(BlobError) as caught:
        await blobs.append(blob_target.sas_url(blob_name), b"data")

    assert (caught.value.status, caught.value.code) == (404, "BlobNotFound")


async def test_another_writers_appends_are_kept_and_ours_go_after_them(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"ours-1 ")
    async with httpx.AsyncClient() as http:
        await AppendBlobClient(http).append(url, b"theirs ")

    offset = await blobs.append(url, b"ours-2")

    assert offset == len(b"ours-1 theirs ")
    assert (await blobs.read(url, 0)).data == b"ours-1 theirs ours-2"


# ---------------------------------------------------------------------- nothing new, 404


async def test_reads_at_and_past_the_end_are_empty_not_errors(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    empty = await blobs.read(url, 0)
    await blobs.append(url, b"0123456789")
    etag = (await blobs.properties(url)).etag

    at_end = await blobs.read(url, 10)
    past_end = await blobs.read(url, 25)
    unchanged = await blobs.read(url, 3, if_none_match=etag)

    assert (empty.data, empty.size, empty.exists) == (b"", 0, True)
    assert (at_end.data, at_end.size, at_end.exists) == (b"", 10, True)
    assert (past_end.data, past_end.size, past_end.exists) == (b"", 10, True)
    assert (unchanged.data, unchanged.exists) == (b"", True)


async def test_a_bounded_read_returns_at_most_length_bytes(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"0123456789")

    middle = await blobs.read(url, 2, length=5)
    cut = await blobs.read(url, 8, length=5)

    assert (middle.data, middle.size) == (b"23456", 10)
    assert (cut.data, cut.size) == (b"89", 10)


async def test_a_blob_that_does_not_exist_yet_is_not_an_error(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)

    read = await blobs.read(url, 0)
    props = await blobs.properties(url)

    assert (read.exists, read.data, read.size) == (False, b"", None)
    assert props.exists is False


async def test_a_missing_container_is_an_error(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    sas = blob_target.sas(blob_name, "racw", container="no-such-container")
    url = blob_target.url(blob_name, sas, container="no-such-container")

    with pytest.raises(BlobError) as caught:
        await blobs.read(url, 0)

    assert caught.value.status == 404
    assert caught.value.code in ("ContainerNotFound", "ResourceNotFound")


# --------------------------------------------------------------------- errors and secrets


async def test_sas_without_read_permission_names_the_code_and_hides_the_signature(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    await blobs.create(blob_target.sas_url(blob_name))
    no_read = blob_target.sas_url(blob_name, "acw")

    with pytest.raises(BlobError) as caught:
        await blobs.read(no_read, 0)

    text = str(caught.value)
    assert (caught.value.status, caught.value.code) == (403, "AuthorizationPermissionMismatch")
    assert "AuthorizationPermissionMismatch" in text
    assert caught.value.request_id
    assert signature(no_read) not in text
    assert signature(no_read) not in repr(caught.value)
    assert "sig=REDACTED" in text


def test_redact_sas_hides_every_signature() -> None:
    url = "https://a.blob.core.windows.net/c/b?sv=2021-12-02&sp=r&sig=abc%2Bdef%3D&se=x"
    message = f"failed: {url} and again sig=SECRET"

    assert redact_sas(url) == (
        "https://a.blob.core.windows.net/c/b?sv=2021-12-02&sp=r&sig=REDACTED&se=x"
    )
    assert "abc" not in redact_sas(message) and "SECRET" not in redact_sas(message)
    assert redact_sas("https://a/c/b?sv=1&SIG=xyz") == "https://a/c/b?sv=1&sig=REDACTED"


# ------------------------------------------------------------------------------- retries


async def test_reads_are_retried_through_busy_and_broken_connections(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    data = bytes(range(256)) * 40
    await blobs.create(url)
    await blobs.append(url, data)
    wire.fail("busy", when=is_read)
    wire.fail("refused", when=is_read)
    wire.fail("lost", when=is_read)

    found = await blobs.read(url, 100)

    assert found.data == data[100:]
    assert [e.fault for e in wire.log if e.method == "GET"] == ["busy", "refused", "lost", None]


async def test_reads_give_up_after_the_last_attempt_with_the_last_failure(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    wire.fail("busy", times=FAST_RETRY.attempts)

    with pytest.raises(BlobError) as busy:
        await blobs.read(url, 0)
    wire.fail("refused", times=FAST_RETRY.attempts)
    with pytest.raises(BlobError) as refused:
        await blobs.properties(url)

    assert (busy.value.status, busy.value.code) == (503, "ServerBusy")
    assert busy.value.message == "Ingress is over the account limit."
    assert (refused.value.status, refused.value.code) == (0, "ConnectError")
    for error in (busy.value, refused.value):
        assert signature(url) not in str(error)
    assert len(wire.log) == 2 * FAST_RETRY.attempts


async def test_create_is_retried_after_a_lost_answer(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    wire.fail("lost", when=is_create)

    await blobs.create(url)

    assert (await blobs.properties(url)).size == 0
    assert [e.fault for e in wire.log if e.method == "PUT"] == ["lost", None]


@pytest.mark.parametrize("fault", ["lost", "reset", "busy", "refused"])
async def test_an_append_retried_after_a_failure_is_written_exactly_once(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str,
    fault: Fault,
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"before|")
    wire.fail(fault, when=is_append)

    offset = await blobs.append(url, b"exactly once|")
    after = await blobs.append(url, b"after")

    assert (await blobs.read(url, 0)).data == b"before|exactly once|after"
    assert (offset, after) == (7, 20)
    assert [e.fault for e in wire.log if is_append_exchange(e.url)][1] == fault


async def test_a_lost_append_answer_across_blocks_duplicates_nothing(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    data = random.Random(3).randbytes(MAX_APPEND_BLOCK + 1000)
    await blobs.create(url)
    # The second block's answer is lost after the server stored it.
    wire.fail("lost", when=lambda r: (
        is_append(r) and r.headers.get("x-ms-blob-condition-appendpos") not in (None, "0")
    ))

    assert await blobs.append(url, data) == 0
    assert (await blobs.read(url, 0)).data == data


# ------------------------------------------------------------------------------ blob_url


NAMES = ["runs/2024 10/host #1/stdout?.log", "a%20b", "a b", "ünï/çødé/ß.txt", "x+y=z&w.log"]


async def test_blob_url_addresses_each_name_on_both_servers(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    container = blob_target.container_sas_url()
    urls = {name: blob_url(container, f"{blob_name}/{name}") for name in NAMES}

    for name, url in urls.items():
        await blobs.create(url)
        await blobs.append(url, name.encode())
    found = {name: (await blobs.read(url, 0)).data for name, url in urls.items()}

    assert found == {name: name.encode() for name in NAMES}


def test_blob_url_keeps_the_query_and_encodes_the_name() -> None:
    virtual = "https://acct.blob.core.windows.net/outputs?sv=2021-12-02&sr=c&sp=racw&sig=a%2Bb"
    path_style = "http://127.0.0.1:10000/devstoreaccount1/outputs/?sv=1&sr=c&sig=s"

    assert blob_url(virtual, "run 1/vm#2/stdout.log") == (
        "https://acct.blob.core.windows.net/outputs/run%201/vm%232/stdout.log"
        "?sv=2021-12-02&sr=c&sp=racw&sig=a%2Bb"
    )
    assert blob_url(path_style, "a/b?c") == (
        "http://127.0.0.1:10000/devstoreaccount1/outputs/a/b%3Fc?sv=1&sr=c&sig=s"
    )
    assert blob_url("https://acct.blob.core.windows.net/outputs", "x") == (
        "https://acct.blob.core.windows.net/outputs/x"
    )


@pytest.mark.parametrize(("container", "name", "says"), [
    ("ftp://acct/c?sig=SECRET", "x", "http:// or https://"),
    ("https://acct.blob.core.windows.net/?sig=SECRET", "x", "names no container"),
    ("https://acct.blob.core.windows.net/c?sr=b&sig=SECRET", "x", "sr=c"),
    ("https://acct.blob.core.windows.net/c?sig=SECRET", "", "1 to 1,024 characters"),
    ("https://acct.blob.core.windows.net/c?sig=SECRET", "/abs", "must not start with '/'"),
])
def test_blob_url_refuses_what_cannot_work_without_showing_the_signature(
    container: str, name: str, says: str
) -> None:
    with pytest.raises(ValueError) as caught:
        blob_url(container, name)

    assert says in str(caught.value)
    assert "SECRET" not in str(caught.value)


# ------------------------------------------------------------------ scripted answers only


async def test_bearer_tokens_are_sent_with_a_version_that_accepts_them() -> None:
    seen: list[httpx.Request] = []
    tokens = iter(["token-1", "token-2"])

    async def bearer() -> str:
        return next(tokens)

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "PUT":
            return httpx.Response(201)
        return httpx.Response(403, headers={"x-ms-error-code": "AuthorizationFailure"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = AppendBlobClient(http, bearer)
        await client.create("https://acct.blob.core.windows.net/c/b")
        with pytest.raises(BlobError) as caught:
            await client.properties("https://acct.blob.core.windows.net/c/b")

    assert [r.headers["Authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]
    assert all(r.headers["x-ms-version"] >= "2017-11-09" for r in seen)
    assert caught.value.code == "AuthorizationFailure"
    assert "token" not in str(caught.value)
    with pytest.raises(ValueError, match="2017-11-09"):
        AppendBlobClient(http, bearer, version="2016-05-31")
    with pytest.raises(ValueError, match="x-ms-version"):
        AppendBlobClient(http, version="latest")


@pytest.mark.parametrize(("headers", "named"), [
    ({"Content-Range": "bytes 5-9/10"}, "Content-Range"),
    ({"Content-Range": "garbage"}, "Content-Range"),
    ({"Content-Range": "bytes 0-2/10", "x-ms-creation-time": "yesterday"}, "x-ms-creation-time"),
])
async def test_an_answer_that_does_not_fit_the_request_is_a_clear_error(
    headers: dict[str, str], named: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(206, content=b"abc", headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        with pytest.raises(BlobError) as caught:
            await AppendBlobClient(http).read("https://a/c/b?sig=SECRET", 0)

    assert caught.value.code == "InvalidResponse"
    assert named in caught.value.message
    assert "SECRET" not in str(caught.value)
