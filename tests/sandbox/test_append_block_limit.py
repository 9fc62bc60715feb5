"""The Append Block size limit, and what it does to a run's output blob.

Azure refuses an Append Block over 4 MiB (100 MiB from x-ms-version 2022-11-02) with 413
``RequestBodyTooLarge``; a blob itself takes 50,000 blocks. The Linux handler uploads each
flush's new output as one block and neither splits nor reports a refusal, so a burst over
the limit never reaches the blob while the run still ends Succeeded. ``[storage]
max_append_block`` lowers the limit so that all of this can be seen with kilobytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.sandbox.blob_routes import create_blob_app
from core.sandbox.blobstore import LARGE_BLOCK_LIMIT, SMALL_BLOCK_LIMIT, BlobStore, StorageError
from core.sandbox.fleet import FleetFileError, default_fleet, parse_fleet
from core.sandbox.sas import sign_blob_sas
from tests.sandbox.arm_client import Api, make_fleet, sandbox_api

ACCOUNT, CONTAINER, BLOB = "acct", "out", "run/stdout.txt"
KEY = "a2V5LWZvci10aGUtYmxvY2stbGltaXQtdGVzdHM="
LINUX_VM = {"name": "vm-1", "kind": "vm", "os": "linux"}
VM = Api.vm_path("vm-1")
LIMIT = 64 * 1024


def fleet_with(storage: dict[str, Any]) -> Any:
    return parse_fleet({"storage": storage, "machines": [
        {"name": "m", "kind": "vm", "os": "linux", "subscription": "s", "resource_group": "g",
         "location": "westeurope"}]})


def limited_store(limit: int | None) -> BlobStore:
    store = BlobStore(max_block=limit)
    store.add_account(ACCOUNT, KEY)
    store.create_container(ACCOUNT, CONTAINER)
    store.put_append_blob(ACCOUNT, CONTAINER, BLOB)
    return store


# ------------------------------------------------------------------------------ fleet file


@pytest.mark.parametrize(("value", "size"), [
    (4096, 4096), ("64KiB", 65536), ("4MiB", SMALL_BLOCK_LIMIT), ("100MiB", LARGE_BLOCK_LIMIT),
    ("1000 B", 1000), ("512", 512),
])
def test_max_append_block_takes_bytes_or_sizes(value: object, size: int) -> None:
    assert fleet_with({"max_append_block": value}).max_append_block == size


@pytest.mark.parametrize("value", [0, -1, "101MiB", "4 GB", "4MB", "lots", True, 1.5])
def test_a_bad_max_append_block_is_named(value: object) -> None:
    with pytest.raises(FleetFileError, match=r"storage\.max_append_block: .*not allowed; a size "
                                             r"from 1 byte to 100MiB"):
        fleet_with({"max_append_block": value})


def test_by_default_the_service_limits_apply() -> None:
    assert default_fleet().max_append_block is None
    assert fleet_with({}).max_append_block is None
    store = BlobStore()
    assert store.block_limit("2021-12-02") == SMALL_BLOCK_LIMIT
    assert store.block_limit("2022-11-02") == LARGE_BLOCK_LIMIT


# ------------------------------------------------------------------------------- the store


def test_a_block_over_the_lower_limit_is_refused_as_azure_refuses_it() -> None:
    store = limited_store(1000)

    with pytest.raises(StorageError) as refused:
        store.append_block(ACCOUNT, CONTAINER, BLOB, b"x" * 1001, version="2022-11-02")
    assert (refused.value.status, refused.value.code) == (413, "RequestBodyTooLarge")
    assert refused.value.details == {"MaxLimit": "1000"}
    assert store.properties(ACCOUNT, CONTAINER, BLOB).size == 0


def test_the_blob_grows_far_past_the_block_limit_one_block_at_a_time() -> None:
    store = limited_store(1000)
    blocks = [bytes([65 + n]) * 1000 for n in range(20)]

    for block in blocks:
        store.append_block(ACCOUNT, CONTAINER, BLOB, block)

    props = store.properties(ACCOUNT, CONTAINER, BLOB)
    assert (props.size, props.committed_block_count) == (20_000, 20)
    assert store.read(ACCOUNT, CONTAINER, BLOB).data == b"".join(blocks)


def test_the_version_limit_still_applies_below_a_higher_setting() -> None:
    store = limited_store(LARGE_BLOCK_LIMIT)

    assert store.block_limit("2021-12-02") == SMALL_BLOCK_LIMIT
    with pytest.raises(StorageError) as refused:
        store.append_block(ACCOUNT, CONTAINER, BLOB, b"x" * (SMALL_BLOCK_LIMIT + 1),
                           version="2021-12-02")
    assert refused.value.details == {"MaxLimit": str(SMALL_BLOCK_LIMIT)}


async def test_the_blob_endpoint_refuses_an_oversized_block_with_413() -> None:
    store = limited_store(1000)
    sas = sign_blob_sas(ACCOUNT, KEY, CONTAINER, BLOB, "racw",
                        datetime.now(UTC) + timedelta(hours=1))
    url = f"http://blobs.test/{ACCOUNT}/{CONTAINER}/{BLOB}?comp=appendblock&{sas}"
    transport = httpx.ASGITransport(app=create_blob_app(store))
    async with httpx.AsyncClient(transport=transport) as http:
        refused = await http.put(url, content=b"x" * 1001, headers={"x-ms-version": "2025-11-05"})
        taken = await http.put(url, content=b"y" * 1000, headers={"x-ms-version": "2025-11-05"})

    assert refused.status_code == 413
    assert refused.headers["x-ms-error-code"] == "RequestBodyTooLarge"
    assert "<MaxLimit>1000</MaxLimit>" in refused.text
    assert taken.status_code == 201
    assert store.read(ACCOUNT, CONTAINER, BLOB).data == b"y" * 1000


# -------------------------------------------------------------------------------- the agent


async def blob_of(api: Api, url: str) -> bytes:
    answer = await api.client.get(url, headers={"x-ms-version": "2021-12-02"})
    assert answer.status_code == 200, answer.text
    return answer.content


async def until_blob_holds(api: Api, url: str, size: int, within: float = 30.0) -> None:
    """Wait until the agent has flushed ``size`` bytes to the blob (a generous deadline)."""
    deadline = time.monotonic() + within
    while True:
        answer = await api.client.get(url, headers={"x-ms-version": "2021-12-02"})
        assert answer.status_code in (200, 404), answer.text  # 404: no flush yet
        if answer.status_code == 200 and len(answer.content) >= size:
            return
        assert time.monotonic() < deadline, f"the blob did not reach {size} bytes in {within} s"
        await asyncio.sleep(0.05)


def wait_for_gate(gate: Path) -> str:
    """A script line that waits until the test creates ``gate``: the test does so once the
    output before it is in the blob, so the next output goes up in a later flush."""
    return f"until [ -e '{gate}' ]; do sleep 0.05; done\n"


def write_at_once(size: int, letter: str, scratch: Path) -> str:
    """Script lines that print ``size`` bytes of ``letter`` in one write(2), so that no flush
    can take part of them (``tr`` alone writes a few KiB at a time)."""
    return (f"head -c {size} /dev/zero | tr '\\0' {letter} > '{scratch}'\n"
            f"dd if='{scratch}' bs={size} count=1 status=none\n")


# Each step below waits for the blob rather than for time, so the ticks need not be quick.
FLUSH_INTERVAL = 0.2


async def test_a_burst_over_the_limit_never_reaches_the_blob_and_the_run_succeeds(
    tmp_path: Path,
) -> None:
    # 10,000 bytes go up at one flush; the 200,000-byte burst, written only after they are in
    # the blob, goes up at a later one as one block over 64 KiB: refused, as Azure refuses
    # the handler's.
    gate = tmp_path / "burst-gate"
    script = ("head -c 10000 /dev/zero | tr '\\0' a\n" + wait_for_gate(gate)
              + write_at_once(200_000, "b", tmp_path / "burst"))
    fleet = dataclasses.replace(make_fleet(LINUX_VM, flush_interval=FLUSH_INTERVAL),
                                max_append_block=LIMIT)
    async with sandbox_api(fleet, tmp_path / "sandbox") as api:
        url = api.blob_url("burst/out")
        put = await api.put(VM, "burst", {"source": {"script": script}, "outputBlobUri": url,
                                          "timeoutInSeconds": 120})
        assert put.status_code == 201, put.text
        await until_blob_holds(api, url, 10_000)
        gate.touch()
        view = (await api.wait_for(VM, "burst", within=60))["properties"]["instanceView"]

        assert view["executionState"] == "Succeeded"
        assert view["output"] == "b" * 4096
        assert await blob_of(api, url) == b"a" * 10_000


async def test_output_spread_over_flushes_reaches_the_blob_whole_past_the_limit(
    tmp_path: Path,
) -> None:
    # Eight 20,000-byte pieces, each flushed on its own (the script waits for the blob to
    # hold the one before): 160,000 bytes, 2.4 blocks' worth.
    letters = "abcdefgh"
    piece = 20_000
    script = "".join(write_at_once(piece, letter, tmp_path / f"piece-{letter}")
                     + wait_for_gate(tmp_path / f"gate-{letter}") for letter in letters)
    expected = b"".join(letter.encode() * piece for letter in letters)
    fleet = dataclasses.replace(make_fleet(LINUX_VM, flush_interval=FLUSH_INTERVAL),
                                max_append_block=LIMIT)
    async with sandbox_api(fleet, tmp_path / "sandbox") as api:
        url = api.blob_url("spread/out")
        put = await api.put(VM, "spread", {"source": {"script": script}, "outputBlobUri": url,
                                           "timeoutInSeconds": 120})
        assert put.status_code == 201, put.text
        for count, letter in enumerate(letters, start=1):
            await until_blob_holds(api, url, count * piece)
            (tmp_path / f"gate-{letter}").touch()
        view = (await api.wait_for(VM, "spread", within=60))["properties"]["instanceView"]

        assert view["executionState"] == "Succeeded"
        assert await blob_of(api, url) == expected
