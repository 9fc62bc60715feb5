"""The sandbox's append-blob store and service SAS, without HTTP.

SAS signing and verification are checked against Microsoft's SDK (``azure-storage-blob``):
its tokens must verify, ours must be the very same tokens, and any tampering must fail.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from azure.storage.blob import generate_blob_sas, generate_container_sas

from core.sandbox.blobstore import (
    LARGE_BLOCK_LIMIT,
    MAX_BLOCKS,
    SMALL_BLOCK_LIMIT,
    BlobStore,
    StorageError,
    max_append_block_size,
    parse_blob_url,
    parse_query,
)
from core.sandbox.sas import (
    SasError,
    canonicalized_resource,
    parse_sas_time,
    sign_blob_sas,
    sign_container_sas,
    string_to_sign,
    verify_service_sas,
)

ACCOUNT = "unitaccount"
KEY = "dW5pdC10ZXN0LWtleS1mb3ItdGhlLXNhbmRib3gtc3RvcmU="
OTHER_KEY = "YW5vdGhlci1rZXktdGhhdC1zaG91bGQtbm90LXZlcmlmeQ=="
CONTAINER = "outputs"
BLOB = "runs/42/stdout.log"
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def verify(query: str, *, blob: str | None = BLOB, any_of: str = "r", now: datetime = NOW,
           container: str = CONTAINER, key: str = KEY, **kwargs: object) -> None:
    verify_service_sas(
        parse_query(query), account=ACCOUNT, account_key=key, container=container, blob=blob,
        any_of=any_of, now=now, **kwargs,  # type: ignore[arg-type]
    )


def refusal(query: str, **kwargs: object) -> SasError:
    with pytest.raises(SasError) as caught:
        verify(query, **kwargs)  # type: ignore[arg-type]
    assert caught.value.status == 403
    return caught.value


# ------------------------------------------------------------------------ SDK cross-check

SDK_OPTIONS: list[dict[str, object]] = [
    {},
    {"start": NOW - timedelta(minutes=5)},
    {"ip": "10.0.0.1-10.0.0.9", "protocol": "https"},
    {"protocol": "https,http", "cache_control": "no-cache", "content_disposition": "inline",
     "content_encoding": "gzip", "content_language": "en", "content_type": "text/plain; a=b"},
    {"encryption_scope": "scope-1"},
]


@pytest.mark.parametrize("options", SDK_OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_sdk_blob_sas_verifies_and_equals_ours(options: dict[str, object]) -> None:
    sdk = generate_blob_sas(ACCOUNT, CONTAINER, BLOB, account_key=KEY, permission="racw",
                            expiry=LATER, **options)  # type: ignore[arg-type]
    sdk_version = parse_query(sdk)["sv"]
    ours = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "racw", LATER, version=sdk_version,
                         **options)  # type: ignore[arg-type]

    verify(sdk, any_of="a", client_ip="10.0.0.5", https=True)
    assert parse_query(ours) == parse_query(sdk)


@pytest.mark.parametrize("options", SDK_OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_sdk_container_sas_verifies_for_any_blob_and_equals_ours(
    options: dict[str, object],
) -> None:
    sdk = generate_container_sas(ACCOUNT, CONTAINER, account_key=KEY, permission="rl",
                                 expiry=LATER, **options)  # type: ignore[arg-type]
    ours = sign_container_sas(ACCOUNT, KEY, CONTAINER, "rl", LATER,
                              version=parse_query(sdk)["sv"], **options)  # type: ignore[arg-type]

    for blob in (BLOB, "other", "deep/er/blob.txt"):
        verify(sdk, blob=blob, client_ip="10.0.0.5")
    assert parse_query(ours) == parse_query(sdk)
    refusal(sdk, container="elsewhere")


def _tampered(token: str, name: str, value: str) -> str:
    query = parse_query(token)
    query[name] = value
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


@pytest.mark.parametrize(("name", "value"), [
    ("sp", "racwd"), ("se", "2099-01-01T00:00:00Z"), ("st", "2025-01-01T00:00:00Z"),
    ("sr", "c"), ("spr", "https,http"), ("rsct", "text/html"), ("ses", "other"),
    ("sv", "2025-05-05"), ("sig", "AAAA" + "A" * 40),
])
def test_tampered_sdk_sas_is_refused(name: str, value: str) -> None:
    sdk = generate_blob_sas(ACCOUNT, CONTAINER, BLOB, account_key=KEY, permission="r",
                            expiry=LATER, start=NOW - timedelta(hours=1))
    error = refusal(_tampered(sdk, name, value))

    assert error.code == "AuthenticationFailed"
    assert error.details["AuthenticationErrorDetail"].startswith("Signature did not match.")


def test_sas_for_another_blob_container_or_key_is_refused() -> None:
    sdk = generate_blob_sas(ACCOUNT, CONTAINER, BLOB, account_key=KEY, permission="r",
                            expiry=LATER)

    assert refusal(sdk, blob="runs/42/stderr.log").code == "AuthenticationFailed"
    assert refusal(sdk, container="other").code == "AuthenticationFailed"
    assert refusal(sdk, key=OTHER_KEY).code == "AuthenticationFailed"
    detail = refusal(sdk, blob="x").details["AuthenticationErrorDetail"]
    assert f"/blob/{ACCOUNT}/{CONTAINER}/x" in detail


# ---------------------------------------------------------------------- string-to-sign


def test_string_to_sign_layouts_per_version() -> None:
    fields = {"sp": "r", "st": "S", "se": "E", "si": "I", "sip": "P", "spr": "https",
              "sr": "b", "snapshot": "T", "ses": "X", "rscc": "1", "rscd": "2", "rsce": "3",
              "rscl": "4", "rsct": "5"}
    resource = canonicalized_resource(ACCOUNT, CONTAINER, BLOB)

    new = string_to_sign({**fields, "sv": "2020-12-06"}, resource)
    mid = string_to_sign({**fields, "sv": "2019-02-02"}, resource)
    old = string_to_sign({**fields, "sv": "2015-04-05"}, resource)

    assert new == f"r\nS\nE\n{resource}\nI\nP\nhttps\n2020-12-06\nb\nT\nX\n1\n2\n3\n4\n5"
    assert mid == f"r\nS\nE\n{resource}\nI\nP\nhttps\n2019-02-02\nb\nT\n1\n2\n3\n4\n5"
    assert old == f"r\nS\nE\n{resource}\nI\nP\nhttps\n2015-04-05\n1\n2\n3\n4\n5"
    assert resource == "/blob/unitaccount/outputs/runs/42/stdout.log"
    assert canonicalized_resource(ACCOUNT, CONTAINER) == "/blob/unitaccount/outputs"


@pytest.mark.parametrize("version", ["2015-04-05", "2018-11-09", "2020-12-06", "2026-10-06"])
def test_our_tokens_verify_at_every_layout(version: str) -> None:
    token = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, version=version,
                          content_type="text/plain")

    verify(token)
    assert refusal(_tampered(token, "rsct", "text/html")).code == "AuthenticationFailed"


def test_sign_accepts_strings_for_times() -> None:
    token = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", "2025-06-02",
                          start="2025-06-01T11:00Z")

    assert parse_query(token)["se"] == "2025-06-02"
    verify(token)


# ------------------------------------------------------------------------- other checks


def test_missing_sas_is_no_authentication_information() -> None:
    error = refusal("")

    assert error.code == "NoAuthenticationInformation"
    assert refusal("sv=2020-12-06&sp=r").code == "NoAuthenticationInformation"


@pytest.mark.parametrize("missing", ["sv", "sr", "se", "sp"])
def test_mandatory_fields(missing: str) -> None:
    query = parse_query(sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER))
    del query[missing]
    error = refusal("&".join(f"{k}={quote(v, safe='')}" for k, v in query.items()))

    assert error.code == "AuthenticationFailed"
    assert error.details["AuthenticationErrorDetail"] == f"{missing} is mandatory. Cannot be empty"


def test_unsupported_versions_and_resources() -> None:
    old = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, version="2013-08-15")
    snapshot = _tampered(sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER), "sr", "bs")

    assert "2013-08-15" in refusal(old).details["AuthenticationErrorDetail"]
    assert "sr='bs'" in refusal(snapshot).details["AuthenticationErrorDetail"]


def test_blob_sas_on_a_container_request_is_a_resource_type_mismatch() -> None:
    token = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER)

    assert refusal(token, blob=None).code == "AuthorizationResourceTypeMismatch"


def test_stored_access_policies_do_not_exist() -> None:
    signed = generate_blob_sas(ACCOUNT, CONTAINER, BLOB, account_key=KEY, policy_id="policy")
    appended = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER) + "&si=policy"

    detail = refusal(signed).details["AuthenticationErrorDetail"]
    assert "'policy' does not name a stored access policy" in detail
    assert "Signature did not match" in refusal(appended).details["AuthenticationErrorDetail"]


def test_time_window() -> None:
    token = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, start=NOW)

    verify(token, now=NOW)
    verify(token, now=LATER)
    expired = refusal(token, now=LATER + timedelta(seconds=1))
    early = refusal(token, now=NOW - timedelta(seconds=1))

    assert expired.code == early.code == "AuthenticationFailed"
    detail = expired.details["AuthenticationErrorDetail"]
    assert detail.startswith("Signature not valid in the specified time frame: ")
    assert "Expiry [Sun, 01 Jun 2025 13:00:00 GMT]" in detail
    assert "Current [Sun, 01 Jun 2025 13:00:01 GMT]" in detail
    assert "Start [Sun, 01 Jun 2025 12:00:00 GMT]" in early.details["AuthenticationErrorDetail"]


def test_malformed_times_are_refused() -> None:
    token = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", "next tuesday")

    assert "not well formed" in refusal(token).details["AuthenticationErrorDetail"]


def test_protocol() -> None:
    https_only = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, protocol="https")
    both = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, protocol="https,http")

    verify(https_only, https=True)
    verify(both, https=False)
    assert refusal(https_only, https=False).code == "AuthorizationProtocolMismatch"


def test_ip_ranges() -> None:
    single = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, ip="127.0.0.1")
    span = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER, ip="10.0.0.1-10.0.0.9")

    verify(single, client_ip="127.0.0.1")
    verify(span, client_ip="10.0.0.9")
    verify(span, client_ip=None)
    assert refusal(span, client_ip="10.0.0.10").code == "AuthorizationSourceIPMismatch"
    assert refusal(single, client_ip="::1").code == "AuthorizationSourceIPMismatch"


def test_permissions() -> None:
    token = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "rc", LATER)

    verify(token, any_of="r")
    verify(token, any_of="cw")
    assert refusal(token, any_of="aw").code == "AuthorizationPermissionMismatch"


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-06-01", datetime(2025, 6, 1, tzinfo=UTC)),
    ("2025-06-01T12:30Z", datetime(2025, 6, 1, 12, 30, tzinfo=UTC)),
    ("2025-06-01T12:30:15Z", datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)),
    ("2025-06-01T12:30:15.1234567Z", datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)),
])
def test_parse_sas_time(text: str, expected: datetime) -> None:
    assert parse_sas_time(text) == expected


# ---------------------------------------------------------------------------------- store


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> BlobStore:
    blobs = BlobStore(clock=clock)
    blobs.add_account(ACCOUNT, KEY)
    blobs.create_container(ACCOUNT, CONTAINER)
    return blobs


def error_of(call: object, *args: object, **kwargs: object) -> StorageError:
    with pytest.raises(StorageError) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize("name", ["ab", "a" * 25, "Upper1", "with-dash", "subscriptions!"])
def test_account_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="3-24 lowercase"):
        BlobStore().add_account(name, KEY)


def test_account_keys_must_be_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        BlobStore().add_account("abc", "not base64!")


@pytest.mark.parametrize("name", ["c1", "Caps", "-lead", "trail-", "dou--ble", "x" * 64])
def test_container_names_are_checked(store: BlobStore, name: str) -> None:
    with pytest.raises(ValueError, match="container name"):
        store.create_container(ACCOUNT, name)


def test_create_container_twice(store: BlobStore) -> None:
    store.create_container(ACCOUNT, CONTAINER)

    error = error_of(store.create_container, ACCOUNT, CONTAINER, exist_ok=False)
    assert (error.status, error.code) == (409, "ContainerAlreadyExists")
    assert store.containers(ACCOUNT) == [CONTAINER]


def test_missing_account_container_and_blob(store: BlobStore) -> None:
    assert error_of(store.properties, "nobody", CONTAINER, BLOB).code == "ResourceNotFound"
    assert error_of(store.properties, ACCOUNT, "nothere", BLOB).code == "ContainerNotFound"
    assert error_of(store.properties, ACCOUNT, CONTAINER, BLOB).code == "BlobNotFound"
    missing = error_of(store.append_block, ACCOUNT, "nothere", BLOB, b"x")
    assert (missing.status, missing.code) == (404, "ContainerNotFound")
    assert error_of(store.append_block, ACCOUNT, CONTAINER, BLOB, b"x").code == "BlobNotFound"


def test_put_append_read(store: BlobStore) -> None:
    created = store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    first = store.append_block(ACCOUNT, CONTAINER, BLOB, b"hello")
    second = store.append_block(ACCOUNT, CONTAINER, BLOB, b" world")
    whole = store.read(ACCOUNT, CONTAINER, BLOB)

    assert (created.size, created.committed_block_count, created.sealed) == (0, 0, False)
    assert created.content_type == "application/octet-stream"
    assert (first.offset, second.offset) == (0, 5)
    assert second.properties.committed_block_count == 2
    assert (whole.data, whole.ranged, whole.first, whole.last) == (b"hello world", False, 0, 10)


def test_etag_changes_on_every_write_even_with_a_frozen_clock(store: BlobStore) -> None:
    etags = [store.put_append_blob(ACCOUNT, CONTAINER, BLOB).etag]
    etags += [store.append_block(ACCOUNT, CONTAINER, BLOB, b"x").properties.etag
              for _ in range(3)]
    etags.append(store.seal(ACCOUNT, CONTAINER, BLOB).etag)

    assert len(set(etags)) == len(etags)
    assert all(etag.startswith('"0x') and etag.endswith('"') for etag in etags)


def test_recreate_resets_content_and_creation_time(store: BlobStore, clock: FakeClock) -> None:
    first = store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    store.append_block(ACCOUNT, CONTAINER, BLOB, b"old output")
    clock.now += timedelta(seconds=30)
    second = store.put_append_blob(ACCOUNT, CONTAINER, BLOB)

    assert second.size == 0
    assert second.created == NOW + timedelta(seconds=30)
    assert second.created != first.created
    assert second.etag != first.etag


def test_last_modified_follows_appends(store: BlobStore, clock: FakeClock) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    clock.now += timedelta(minutes=1)
    appended = store.append_block(ACCOUNT, CONTAINER, BLOB, b"x").properties

    assert appended.last_modified == NOW + timedelta(minutes=1)
    assert appended.created == NOW


def test_conditions_on_put(store: BlobStore) -> None:
    etag = store.put_append_blob(ACCOUNT, CONTAINER, BLOB).etag

    exists = error_of(store.put_append_blob, ACCOUNT, CONTAINER, BLOB, if_none_match="*")
    stale = error_of(store.put_append_blob, ACCOUNT, CONTAINER, BLOB, if_match='"0x1"')
    assert (exists.status, exists.code) == (409, "BlobAlreadyExists")
    assert (stale.status, stale.code) == (412, "ConditionNotMet")
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB, if_match=etag)
    store.put_append_blob(ACCOUNT, CONTAINER, "fresh", if_none_match="*")


def test_append_conditions(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    store.append_block(ACCOUNT, CONTAINER, BLOB, b"12345")

    position = error_of(store.append_block, ACCOUNT, CONTAINER, BLOB, b"6", append_position=4)
    size = error_of(store.append_block, ACCOUNT, CONTAINER, BLOB, b"67", max_size=6)
    assert (position.status, position.code) == (412, "AppendPositionConditionNotMet")
    assert (size.status, size.code) == (412, "MaxBlobSizeConditionNotMet")
    ok = store.append_block(ACCOUNT, CONTAINER, BLOB, b"6", append_position=5, max_size=6)
    assert ok.offset == 5


def test_empty_block_is_refused(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)

    error = error_of(store.append_block, ACCOUNT, CONTAINER, BLOB, b"")
    assert (error.status, error.code) == (400, "InvalidHeaderValue")


def test_block_size_limits_follow_the_version(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    block = b"x" * (SMALL_BLOCK_LIMIT + 1)

    error = error_of(store.append_block, ACCOUNT, CONTAINER, BLOB, block, version="2022-05-01")
    assert (error.status, error.code) == (413, "RequestBodyTooLarge")
    assert error.details["MaxLimit"] == "4194304"
    assert store.append_block(ACCOUNT, CONTAINER, BLOB, block, version="2022-11-02").offset == 0
    assert max_append_block_size("2021-12-02") == SMALL_BLOCK_LIMIT == 4 * 1024 * 1024
    assert max_append_block_size("2022-11-02") == LARGE_BLOCK_LIMIT == 100 * 1024 * 1024


def test_block_count_limit(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    for _ in range(MAX_BLOCKS):
        store.append_block(ACCOUNT, CONTAINER, BLOB, b".")

    error = error_of(store.append_block, ACCOUNT, CONTAINER, BLOB, b".")
    assert (error.status, error.code) == (409, "BlockCountExceedsLimit")
    assert store.properties(ACCOUNT, CONTAINER, BLOB).size == 50_000


def test_sealed_blobs_take_no_appends(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    store.append_block(ACCOUNT, CONTAINER, BLOB, b"final")
    sealed = store.seal(ACCOUNT, CONTAINER, BLOB)

    assert sealed.sealed
    assert store.seal(ACCOUNT, CONTAINER, BLOB).etag == sealed.etag
    for call, args in ((store.append_block, (b"x",)), (store.put_append_blob, ())):
        error = error_of(call, ACCOUNT, CONTAINER, BLOB, *args)
        assert (error.status, error.code) == (409, "BlobIsSealed")
    assert store.read(ACCOUNT, CONTAINER, BLOB).data == b"final"


def test_ranges(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)

    empty = error_of(store.read, ACCOUNT, CONTAINER, BLOB, 0)
    assert (empty.status, empty.code) == (416, "InvalidRange")
    assert empty.headers == {"Content-Range": "bytes */0"}
    assert store.read(ACCOUNT, CONTAINER, BLOB).data == b""

    store.append_block(ACCOUNT, CONTAINER, BLOB, b"0123456789")
    part = store.read(ACCOUNT, CONTAINER, BLOB, 2, 4)
    tail = store.read(ACCOUNT, CONTAINER, BLOB, 7)
    cut = store.read(ACCOUNT, CONTAINER, BLOB, 8, 100)
    assert (part.data, part.first, part.last, part.ranged) == (b"234", 2, 4, True)
    assert (tail.data, tail.last) == (b"789", 9)
    assert (cut.data, cut.last) == (b"89", 9)
    for start, end in ((10, None), (11, None), (5, 4)):
        error = error_of(store.read, ACCOUNT, CONTAINER, BLOB, start, end)
        assert error.code == "InvalidRange"
        assert error.headers == {"Content-Range": "bytes */10"}


def test_concurrent_appends_from_threads_keep_every_byte(store: BlobStore) -> None:
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    offsets: list[int] = []

    def writer(mark: bytes) -> None:
        for _ in range(300):
            offsets.append(store.append_block(ACCOUNT, CONTAINER, BLOB, mark * 3).offset)

    threads = [threading.Thread(target=writer, args=(bytes([65 + n]),)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    data = store.read(ACCOUNT, CONTAINER, BLOB).data
    assert sorted(offsets) == list(range(0, 6 * 300 * 3, 3))
    assert all(data[o:o + 3] in {bytes([c]) * 3 for c in range(65, 71)} for o in offsets)


# --------------------------------------------------------------------------- authorisation


def test_authorize_maps_operations_to_permissions(store: BlobStore) -> None:
    def sas(permissions: str) -> dict[str, str]:
        return parse_query(sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, permissions, LATER))

    def refused(permissions: str, operation: str) -> str:
        return error_of(store.authorize, ACCOUNT, CONTAINER, BLOB, sas(permissions),
                        operation).code

    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("c"), "create")
    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("w"), "create")
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    assert refused("c", "create") == "AuthorizationPermissionMismatch"
    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("w"), "create")
    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("a"), "append")
    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("w"), "append")
    assert refused("rc", "append") == "AuthorizationPermissionMismatch"
    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("r"), "read")
    assert refused("acw", "read") == "AuthorizationPermissionMismatch"
    store.authorize(ACCOUNT, CONTAINER, BLOB, sas("w"), "seal")
    assert refused("rac", "seal") == "AuthorizationPermissionMismatch"


def test_authorize_uses_the_store_clock(store: BlobStore, clock: FakeClock) -> None:
    query = parse_query(sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER))
    clock.now = LATER + timedelta(seconds=1)

    error = error_of(store.authorize, ACCOUNT, CONTAINER, BLOB, query, "read")
    assert (error.status, error.code) == (403, "AuthenticationFailed")
    assert "Signature not valid" in error.details["AuthenticationErrorDetail"]


def test_authorize_unknown_account(store: BlobStore) -> None:
    error = error_of(store.authorize, "nobody", CONTAINER, BLOB, {}, "read")
    assert (error.status, error.code) == (404, "ResourceNotFound")


def test_writing_through_sas_urls(store: BlobStore) -> None:
    sas = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "racw", LATER)
    url = f"http://127.0.0.1:8123/{ACCOUNT}/{CONTAINER}/{BLOB}?{sas}"
    read_only = url.replace(sas, sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "r", LATER))

    store.put_append_blob_via_sas(url)
    assert store.append_block_via_sas(url, b"out").offset == 0
    assert store.append_block_via_sas(url, b"put").offset == 3
    assert error_of(store.append_block_via_sas, read_only, b"x").code == (
        "AuthorizationPermissionMismatch")
    assert error_of(store.put_append_blob_via_sas, url.split("?")[0]).code == (
        "NoAuthenticationInformation")
    assert store.read(ACCOUNT, CONTAINER, BLOB).data == b"output"


def test_parse_blob_url() -> None:
    path_style = parse_blob_url("http://127.0.0.1:10000/acct/cont/a/b%20c.txt?sv=1&sig=a+b%3D")
    host_style = parse_blob_url("https://acct.blob.core.windows.net/cont/dir/x.log?sp=r")

    assert (path_style.account, path_style.container, path_style.blob) == (
        "acct", "cont", "a/b c.txt")
    assert path_style.query == {"sv": "1", "sig": "a+b="}
    assert not path_style.https
    assert (host_style.account, host_style.container, host_style.blob) == (
        "acct", "cont", "dir/x.log")
    assert host_style.https
    for bad in ("ftp://h/a/c/b", "http://127.0.0.1/acct/cont", "not a url"):
        with pytest.raises(ValueError):
            parse_blob_url(bad)
