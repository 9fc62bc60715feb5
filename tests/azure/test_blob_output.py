"""BlobOutput at the end of a run: it reads the blobs until they end with the instance
view's tails, and names every stream whose blob never does (against the sandbox's blob
endpoint; Azurite answers the same requests the same way).
"""

from __future__ import annotations

import pytest

from core.azure.blob import AppendBlobClient
from core.azure.blob_tail import BlobTailer
from core.backends.blob_output import QUIET_BACKOFF, BlobOutput
from core.events import OutputAppended
from core.model import MachineId, Stream
from tests.azure.faulty import FaultyTransport
from tests.blob_targets import SandboxTarget

MACHINE = MachineId("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/"
                     "virtualMachines/vm-1")
GRACE = 0.3


def output_of(blobs: AppendBlobClient, stdout_url: str, stderr_url: str,
              interval: float = 0.05, *, exact_tails: bool = False) -> BlobOutput:
    """A machine's output followed in its blobs; ``exact_tails``: a Linux machine's, whose
    tails are its files' last 4,096 bytes."""
    return BlobOutput(MACHINE, "vm-1", {
        Stream.STDOUT: BlobTailer(blobs, stdout_url),
        Stream.STDERR: BlobTailer(blobs, stderr_url),
    }, interval=interval, exact_tails=exact_tails)


def stream_urls(target: SandboxTarget, name: str) -> tuple[str, str]:
    """SAS URLs of a machine's stdout and stderr blobs."""
    return target.sas_url(f"{name}/out"), target.sas_url(f"{name}/err")


def gets(wire: FaultyTransport) -> int:
    """Blob reads sent so far."""
    return len(wire.statuses(lambda exchange: exchange.method == "GET"))


async def drained(output: BlobOutput, stdout_tail: str, stderr_tail: str = "", *,
                  read: bytes = b"") -> dict[Stream, bytes]:
    """What the drain delivered per stream (the contiguous bytes to store), after ``read``
    bytes of stdout were delivered already."""
    events = [event async for event in output.drain(
        {Stream.STDOUT: stdout_tail, Stream.STDERR: stderr_tail}, GRACE)]
    delivered = {Stream.STDOUT: read, Stream.STDERR: b""}
    for event in events:
        assert isinstance(event, OutputAppended)
        assert event.offset == len(delivered[event.stream])
        delivered[event.stream] += event.data
    return delivered


async def test_blobs_that_end_with_their_tails_leave_no_note(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    for url, data in ((out, b"line 1\nline 2\n"), (err, b"oops\n")):
        await blobs.create(url)
        await blobs.append(url, data)
    output = output_of(blobs, out, err)

    assert await drained(output, "line 2\n", "oops\n") == {
        Stream.STDOUT: b"line 1\nline 2\n", Stream.STDERR: b"oops\n"}
    assert output.shortfall() == ""


async def test_a_blob_short_of_its_tail_is_named_with_the_bytes_it_holds(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"first 1,234 bytes... " * 10)
    await blobs.create(err)
    output = output_of(blobs, out, err)

    delivered = await drained(output, "the end the blob never got\n")

    # What the blob holds is kept as it is: the tail is not spliced on, hiding the gap.
    assert delivered[Stream.STDOUT] == b"first 1,234 bytes... " * 10
    note = output.shortfall()
    assert note.startswith("output incomplete: the stdout blob holds 210 bytes and, 0.3 s after "
                           "the run ended, still lacked the end the machine reported; only "
                           "those bytes are stored. Likely cause:"), note
    assert "storage refuses a block over 100 MiB" in note
    assert "stderr" not in note


async def test_a_blob_that_never_appeared_is_named(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"all of it\n")
    output = output_of(blobs, out, err)

    delivered = await drained(output, "all of it\n", "an error nobody uploaded\n")

    # Nothing came from the blob: the tail is the output, as for a run without blobs.
    assert delivered == {Stream.STDOUT: b"all of it\n",
                         Stream.STDERR: b"an error nobody uploaded\n"}
    assert output.shortfall() == (
        "output incomplete: the stderr blob did not exist (still 0.3 s after the run ended), "
        "so only the instance view's tail (the last 4 KB at most) is stored.")


async def test_a_blob_that_cannot_be_read_is_named_with_the_refusal(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out = sandbox_target.sas_url(f"{blob_name}/out")
    await blobs.create(out)
    await blobs.append(out, b"secret output\n")
    no_read = sandbox_target.url(f"{blob_name}/out", sandbox_target.sas(f"{blob_name}/out",
                                                                         "acw"))
    output = output_of(blobs, no_read, sandbox_target.sas_url(f"{blob_name}/err"))

    assert (await drained(output, "secret output\n"))[Stream.STDOUT] == b"secret output\n"

    note = output.shortfall()
    assert note == ("output incomplete: the stdout blob could not be read past byte 0 (403 "
                    "AuthorizationPermissionMismatch, still 0.3 s after the run ended), so only "
                    "the instance view's tail (the last 4 KB at most) is stored.")


async def test_a_blob_re_created_by_another_run_is_named(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"this run's first bytes\n")
    await blobs.create(err)
    output = output_of(blobs, out, err)
    first = [event async for event in output.read(every=True)]
    assert b"".join(e.data for e in first) == b"this run's first bytes\n"
    # Another PUT of the same run command name: the agent re-creates the blob.
    await blobs.create(out)
    await blobs.append(out, b"another run's output\n")

    assert (await drained(output, "this run's last bytes\n"))[Stream.STDOUT] == b""

    assert output.shortfall() == (
        "output incomplete: the stdout blob was re-created by another run after 23 bytes.")


async def test_a_drain_reads_nothing_when_the_reads_hold_the_whole_output(
    blobs: AppendBlobClient, wire: FaultyTransport, sandbox_target: SandboxTarget,
    blob_name: str,
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"line 1\nline 2\n")
    await blobs.create(err)
    output = output_of(blobs, out, err)
    live = [event async for event in output.read(every=True)]
    before = gets(wire)

    # The final tails: stdout's is under 4 KB and is what was read; stderr's is empty.
    assert await drained(output, "line 1\nline 2\n") == {Stream.STDOUT: b"",
                                                          Stream.STDERR: b""}

    assert b"".join(event.data for event in live) == b"line 1\nline 2\n"
    assert gets(wire) == before
    assert output.shortfall() == ""


async def test_output_that_repeats_its_tail_is_still_read_to_the_end(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"y\n" * 3000)
    output = output_of(blobs, out, err)
    first = b"".join([event.data async for event in output.read(every=True)])
    await blobs.append(out, b"y\n" * 1000)

    # What was read already ends with the final tail (the last 4 KB): only a read tells
    # that the blob has more.
    whole = await drained(output, "y\n" * 2048, read=first)

    assert whole[Stream.STDOUT] == b"y\n" * 4000
    assert output.shortfall() == ""


async def test_a_stream_with_an_empty_final_tail_is_read_if_its_blob_gave_bytes(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"start\n")
    output = output_of(blobs, out, err)
    first = b"".join([event.data async for event in output.read(every=True)])
    await blobs.append(out, b"more\n")

    whole = await drained(output, "", read=first)

    assert whole[Stream.STDOUT] == b"start\nmore\n"


INTERVAL = 100.0
"""Long enough that a few seconds of a loaded machine do not blur the schedule."""


def next_read(output: BlobOutput) -> float:
    due = output.next_read_in()
    assert due is not None
    return due


@pytest.mark.parametrize("reads, expected", [(1, 2), (2, 4), (3, 8), (5, QUIET_BACKOFF)])
async def test_an_idle_blob_is_read_ever_less_often(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str, reads: int,
    expected: int,
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.create(err)
    output = output_of(blobs, out, err, interval=INTERVAL)

    # Nothing can be uploaded before the agent's first flush: the first read waits for it.
    assert INTERVAL - 5 < next_read(output) <= INTERVAL
    for _ in range(reads):
        assert [event async for event in output.read(every=True)] == []

    assert expected * INTERVAL - 5 < next_read(output) <= expected * INTERVAL


async def test_news_brings_a_read_forward_but_never_within_an_interval_of_the_last(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.create(err)
    output = output_of(blobs, out, err, interval=INTERVAL)
    for _ in range(3):
        assert [event async for event in output.read(every=True)] == []
    assert next_read(output) > 7 * INTERVAL

    await blobs.append(out, b"news\n")
    output.reported({Stream.STDOUT: "news\n", Stream.STDERR: ""})

    # Read at the last read plus one interval, not at once and not after the back-off.
    assert INTERVAL - 5 < next_read(output) <= INTERVAL


async def test_an_unchanged_tail_the_blob_holds_puts_the_next_read_off(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    await blobs.create(out)
    await blobs.append(out, b"held\n")
    await blobs.create(err)
    output = output_of(blobs, out, err, interval=INTERVAL)
    output.reported({Stream.STDOUT: "held\n", Stream.STDERR: ""})
    assert b"".join([e.data async for e in output.read(every=True)]) == b"held\n"

    # A poll that shows the same tails: nothing new at the agent's last report.
    output.reported({Stream.STDOUT: "held\n", Stream.STDERR: ""})

    assert next_read(output) > INTERVAL - 5


async def delivered_by(output: BlobOutput, tails: tuple[str, str],
                       so_far: dict[Stream, bytes]) -> None:
    """Report ``tails`` (stdout, stderr), read what is due, and add it to ``so_far``."""
    output.reported({Stream.STDOUT: tails[0], Stream.STDERR: tails[1]})
    async for event in output.read():
        assert event.offset == len(so_far[event.stream])
        so_far[event.stream] += event.data


async def test_output_under_4_kb_comes_from_the_tails_without_a_blob_read(
    blobs: AppendBlobClient, wire: FaultyTransport, sandbox_target: SandboxTarget,
    blob_name: str,
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    for url in (out, err):
        await blobs.create(url)
    await blobs.append(out, b"line 1\nline 2\n")
    output = output_of(blobs, out, err, exact_tails=True)
    so_far = {Stream.STDOUT: b"", Stream.STDERR: b""}

    # Nothing is known before the first instance view: nothing is read.
    assert output.next_read_in() is None
    await delivered_by(output, ("line 1\n", ""), so_far)
    await delivered_by(output, ("line 1\nline 2\n", ""), so_far)
    assert output.next_read_in() is None
    assert await drained(output, "line 1\nline 2\n", read=so_far[Stream.STDOUT]) == {
        Stream.STDOUT: b"line 1\nline 2\n", Stream.STDERR: b""}

    assert so_far[Stream.STDOUT] == b"line 1\nline 2\n"
    assert gets(wire) == 0
    assert output.shortfall() == ""


async def test_output_past_4_kb_is_read_from_the_blob_from_its_first_byte(
    blobs: AppendBlobClient, wire: FaultyTransport, sandbox_target: SandboxTarget,
    blob_name: str,
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    for url in (out, err):
        await blobs.create(url)
    whole = b"".join(b"%05d\n" % n for n in range(1000))  # 6,000 bytes
    await blobs.append(out, whole)
    output = output_of(blobs, out, err, exact_tails=True)
    so_far = {Stream.STDOUT: b"", Stream.STDERR: b""}

    await delivered_by(output, (whole[:600].decode(), ""), so_far)
    assert gets(wire) == 0
    # The tail reached the cap: it is the end of the stream, no longer all of it.
    await delivered_by(output, (whole[-4096:].decode(), ""), so_far)
    assert so_far[Stream.STDOUT] == whole
    assert await drained(output, whole[-4096:].decode(), read=whole) == {
        Stream.STDOUT: whole, Stream.STDERR: b""}

    assert output.shortfall() == ""
    # Only stdout's blob was read; stderr's tail stayed empty, so its blob never was.
    reads = [exchange.url for exchange in wire.log if exchange.method == "GET"]
    assert reads and all(f"{blob_name}/out" in url for url in reads)


async def test_a_tail_with_a_replacement_character_is_not_taken_for_the_output(
    blobs: AppendBlobClient, wire: FaultyTransport, sandbox_target: SandboxTarget,
    blob_name: str,
) -> None:
    out, err = stream_urls(sandbox_target, blob_name)
    for url in (out, err):
        await blobs.create(url)
    # A character cut at the tail's end (the script was writing it) decodes as U+FFFD.
    await blobs.append(out, "café\n".encode())
    output = output_of(blobs, out, err, exact_tails=True)

    so_far = {Stream.STDOUT: b"", Stream.STDERR: b""}

    await delivered_by(output, ("caf\ufffd", ""), so_far)

    assert so_far[Stream.STDOUT] == "café\n".encode()  # from the blob, read at once
    assert gets(wire) == 1
    assert await drained(output, "café\n", read=so_far[Stream.STDOUT]) == {
        Stream.STDOUT: "café\n".encode(), Stream.STDERR: b""}
