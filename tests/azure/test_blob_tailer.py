"""BlobTailer against the sandbox's blob endpoint and Azurite: every test taking
``blob_target`` runs on both. The tailer must deliver each appended byte exactly once, in
order, and never stitch two blobs of the same name together.
"""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlsplit

import pytest
from azure.storage.blob import BlobClient

from core.azure.blob import MAX_APPEND_BLOCK, AppendBlobClient, BlobError
from core.azure.blob_tail import BlobTailer, TailChunk
from tests.azure.faulty import FaultyTransport, is_read
from tests.blob_targets import BlobTarget, SandboxTarget


async def drain(tailer: BlobTailer, most: int = 50) -> list[TailChunk]:
    """Poll until a poll says there is no more (at least once, at most ``most`` times)."""
    chunks = [await tailer.poll()]
    while chunks[-1].more:
        assert len(chunks) < most, "the tailer keeps saying more without getting there"
        chunks.append(await tailer.poll())
    return chunks


def joined(chunks: list[TailChunk]) -> bytes:
    return b"".join(chunk.data for chunk in chunks)


def assert_contiguous(chunks: list[TailChunk]) -> None:
    position = 0
    for chunk in chunks:
        assert chunk.offset == position
        position += len(chunk.data)


async def test_a_blob_that_appears_late_is_waited_for(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    tailer = BlobTailer(blobs, url)

    before = [await tailer.poll(), await tailer.poll()]
    await blobs.create(url)
    empty = await tailer.poll()
    await blobs.append(url, b"first line\n")
    first = await tailer.poll()

    assert all(c == TailChunk(0, b"", exists=False) for c in before)
    assert empty == TailChunk(0, b"")
    assert first == TailChunk(0, b"first line\n")
    assert tailer.offset == 11


@pytest.mark.parametrize("overlap", [0, 64])
async def test_nothing_new_is_an_empty_chunk_however_the_server_says_it(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str,
    overlap: int,
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"0123456789")
    tailer = BlobTailer(blobs, url, overlap=overlap)
    await tailer.poll()

    idle = [await tailer.poll() for _ in range(3)]
    await blobs.append(url, b"abc")
    later = await tailer.poll()

    assert idle == [TailChunk(10, b"")] * 3
    assert later == TailChunk(10, b"abc")
    # While nothing changed, the blob's ETag was still current: cheap 304 answers.
    assert 304 in wire.statuses(lambda e: e.method == "GET")


async def test_appends_between_polls_arrive_once_and_in_order(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    rng = random.Random(11)
    pieces = [bytes(range(256))] + [rng.randbytes(rng.randrange(1, 3000)) for _ in range(30)]
    await blobs.create(url)
    tailer = BlobTailer(blobs, url)
    chunks: list[TailChunk] = []

    for piece in pieces:
        await blobs.append(url, piece)
        # Sometimes several appends land between polls, sometimes several polls in a row.
        for _ in range(rng.choice([0, 0, 1, 2])):
            chunks.append(await tailer.poll())
    chunks += await drain(tailer)

    assert joined(chunks) == b"".join(pieces)
    assert_contiguous(chunks)
    assert not any(chunk.reset for chunk in chunks)
    assert tailer.offset == sum(map(len, pieces))


async def test_a_multi_mib_blob_comes_in_bounded_chunks_with_more(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    data = bytes(range(256)) * 4096 + random.Random(5).randbytes(2 * MAX_APPEND_BLOCK)
    await blobs.create(url)
    await blobs.append(url, data)
    tailer = BlobTailer(blobs, url)

    chunks = await drain(tailer)

    assert [c.more for c in chunks] == [True, True, False]
    assert max(len(c.data) for c in chunks) == MAX_APPEND_BLOCK
    assert joined(chunks) == data
    assert_contiguous(chunks)


async def test_a_small_chunk_size_still_delivers_every_byte(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    data = bytes(range(256)) * 3
    await blobs.create(url)
    await blobs.append(url, data[:300])
    tailer = BlobTailer(blobs, url, chunk_size=100, overlap=16)

    first = await drain(tailer)
    await blobs.append(url, data[300:])
    second = await drain(tailer)

    assert [len(c.data) for c in first] == [100, 100, 100]
    assert joined(first + second) == data
    assert_contiguous(first + second)


# ------------------------------------------------------------------------ re-created blobs


async def test_a_recreated_blob_with_other_content_resets(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"run 1: starting\n")
    tailer = BlobTailer(blobs, url)
    await tailer.poll()

    # Most likely within the same second: the creation time cannot tell the two apart.
    await blobs.create(url)
    await blobs.append(url, b"run 2: a longer first line\n")
    reset = await tailer.poll()
    await blobs.append(url, b"run 2: more\n")
    after = await tailer.poll()

    assert reset == TailChunk(0, b"run 2: a longer first line\n", reset=True)
    assert after == TailChunk(27, b"run 2: more\n")


async def test_a_recreated_shorter_blob_resets(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"a long first run")
    tailer = BlobTailer(blobs, url, overlap=0)
    await tailer.poll()

    await blobs.create(url)
    await blobs.append(url, b"short")
    reset = await tailer.poll()

    assert reset == TailChunk(0, b"short", reset=True)
    assert tailer.offset == 5


async def test_a_recreated_empty_blob_resets_with_nothing(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"old")
    tailer = BlobTailer(blobs, url)
    await tailer.poll()

    await blobs.create(url)
    reset = await tailer.poll()
    await blobs.append(url, b"new")
    after = await tailer.poll()

    assert reset == TailChunk(0, b"", reset=True)
    assert after == TailChunk(0, b"new")


async def test_a_recreated_blob_with_the_same_start_resets_on_fewer_blocks(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    for part in (b"same ", b"start ", b"here"):
        await blobs.append(url, part)
    tailer = BlobTailer(blobs, url)
    await tailer.poll()

    # Same bytes up to the cursor, more of them, in one block instead of three.
    await blobs.create(url)
    await blobs.append(url, b"same start here, then different")
    reset = await tailer.poll()

    assert reset == TailChunk(0, b"same start here, then different", reset=True)


async def test_sandbox_a_later_recreation_with_the_same_start_resets_on_creation_time(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    url = sandbox_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"abc")
    tailer = BlobTailer(blobs, url)
    await tailer.poll()

    sandbox_target.clock.advance(2)
    await blobs.create(url)
    await blobs.append(url, b"abcdef")
    reset = await tailer.poll()

    assert reset == TailChunk(0, b"abcdef", reset=True)


async def test_azurite_a_deleted_then_recreated_blob_resets(
    blobs: AppendBlobClient, azurite_target: BlobTarget, blob_name: str
) -> None:
    url = azurite_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"abc")
    tailer = BlobTailer(blobs, url)
    await tailer.poll()

    BlobClient.from_blob_url(azurite_target.sas_url(blob_name, "racwd")).delete_blob()
    gone = await tailer.poll()
    await blobs.create(url)
    await blobs.append(url, b"abcdef")
    back = await tailer.poll()

    assert gone == TailChunk(3, b"", exists=False)
    assert back == TailChunk(0, b"abcdef", reset=True)


# -------------------------------------------------------------------- failures and errors


async def test_a_flaky_server_costs_retries_not_bytes(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    data = bytes(range(256)) * 64
    await blobs.create(url)
    tailer = BlobTailer(blobs, url, chunk_size=4000)
    chunks: list[TailChunk] = []

    for start in range(0, len(data), 5000):
        await blobs.append(url, data[start:start + 5000])
        wire.fail("busy", when=is_read)
        wire.fail("lost", when=is_read)
        wire.fail("reset", when=is_read)
        chunks += await drain(tailer)

    assert joined(chunks) == data
    assert_contiguous(chunks)
    faults = [e.fault for e in wire.log if e.method == "GET"]
    assert faults.count("lost") == faults.count("busy") == len(range(0, len(data), 5000))


async def test_one_stale_answer_does_not_restart_the_stream(
    blobs: AppendBlobClient, wire: FaultyTransport, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name)
    await blobs.create(url)
    await blobs.append(url, b"already delivered")
    tailer = BlobTailer(blobs, url)
    await tailer.poll()
    await blobs.append(url, b", then more")

    wire.fail("stale", when=is_read)
    chunk = await tailer.poll()

    assert chunk == TailChunk(17, b", then more")


async def test_a_sas_without_read_permission_is_an_error_without_the_signature(
    blobs: AppendBlobClient, blob_target: BlobTarget, blob_name: str
) -> None:
    url = blob_target.sas_url(blob_name, "acw")
    tailer = BlobTailer(blobs, url)

    with pytest.raises(BlobError) as caught:
        await tailer.poll()

    sig = dict(parse_qsl(urlsplit(url).query))["sig"]
    assert caught.value.code == "AuthorizationPermissionMismatch"
    assert caught.value.code in str(caught.value)
    assert sig not in str(caught.value)


def test_bad_settings_are_refused(blobs: AppendBlobClient) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        BlobTailer(blobs, "https://a/c/b", chunk_size=0)
    with pytest.raises(ValueError, match="overlap"):
        BlobTailer(blobs, "https://a/c/b", overlap=-1)
