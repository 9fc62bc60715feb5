"""BlobOutput at the end of a run: it reads the blobs until they end with the instance
view's tails, and names every stream whose blob never does (against the sandbox's blob
endpoint; Azurite answers the same requests the same way).
"""

from __future__ import annotations

from core.azure.blob import AppendBlobClient
from core.azure.blob_tail import BlobTailer
from core.backends.blob_output import BlobOutput
from core.events import OutputAppended
from core.model import MachineId, Stream
from tests.blob_targets import SandboxTarget

MACHINE = MachineId("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/"
                     "virtualMachines/vm-1")
GRACE = 0.3


def output_of(blobs: AppendBlobClient, stdout_url: str, stderr_url: str) -> BlobOutput:
    return BlobOutput(MACHINE, "vm-1", {
        Stream.STDOUT: BlobTailer(blobs, stdout_url),
        Stream.STDERR: BlobTailer(blobs, stderr_url),
    }, interval=0.05)


async def drained(output: BlobOutput, stdout_tail: str, stderr_tail: str = ""
                  ) -> dict[Stream, bytes]:
    """What the drain delivered per stream (the contiguous bytes to store)."""
    events = [event async for event in output.drain(
        {Stream.STDOUT: stdout_tail, Stream.STDERR: stderr_tail}, GRACE)]
    delivered = {Stream.STDOUT: b"", Stream.STDERR: b""}
    for event in events:
        assert isinstance(event, OutputAppended)
        assert event.offset == len(delivered[event.stream])
        delivered[event.stream] += event.data
    return delivered


async def test_blobs_that_end_with_their_tails_leave_no_note(
    blobs: AppendBlobClient, sandbox_target: SandboxTarget, blob_name: str
) -> None:
    out, err = sandbox_target.sas_url(f"{blob_name}/out"), sandbox_target.sas_url(
        f"{blob_name}/err")
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
    out, err = sandbox_target.sas_url(f"{blob_name}/out"), sandbox_target.sas_url(
        f"{blob_name}/err")
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
    out, err = sandbox_target.sas_url(f"{blob_name}/out"), sandbox_target.sas_url(
        f"{blob_name}/err")
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
    out, err = sandbox_target.sas_url(f"{blob_name}/out"), sandbox_target.sas_url(
        f"{blob_name}/err")
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
