"""SSH runs copy their output to the same append blobs as the Azure path, when configured."""

from __future__ import annotations

from pathlib import Path

import httpx

from core.azure.blob import AppendBlobClient
from core.azure.session import OutputContainer
from core.backends.ssh import SshBackend, SshSettings
from core.events import Finished, OutputAppended
from core.model import Command, CommandId, Parameter, RunState, Stream
from tests.blob_targets import BlobTarget
from tests.sshd import Sshd

SCRIPT = r"""
for i in $(seq 1 30); do printf 'out %s \xff\n' "$i"; echo "err $i" >&2; sleep 0.05; done
head -c 300000 /dev/urandom | base64
"""


async def test_output_blobs_hold_exactly_what_the_run_printed(
    sshd: Sshd, blob_target: BlobTarget
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        output = OutputContainer(blob_target.container_sas_url("racwl"))
        ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts),
                         blobs=AppendBlobClient(http), output=output)
        machine = sshd.machine()
        command = Command(CommandId.SHELL, SCRIPT, timeout=60)
        events = [e async for e in ssh.run(machine, command, run_id="blobrun1")]
        await ssh.aclose()
        finished = events[-1]
        assert isinstance(finished, Finished) and finished.state is RunState.SUCCEEDED
        printed = {s: b"".join(e.data for e in events
                               if isinstance(e, OutputAppended) and e.stream is s)
                   for s in Stream}
        assert len(printed[Stream.STDOUT]) > 300_000
        targets = output.targets("blobrun1", machine)
        for stream, url in ((Stream.STDOUT, targets.output_uri),
                            (Stream.STDERR, targets.error_uri)):
            answer = await http.get(url, headers={"x-ms-version": "2021-12-02"})
            assert answer.status_code == 200, answer.text
            assert answer.content == printed[stream]


async def test_a_refused_container_does_not_fail_the_run(sshd: Sshd, tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        # Nothing listens there: the mirror gives up, the run goes on.
        output = OutputContainer("http://127.0.0.1:9/acct/container?sv=2021-12-02&sig=x")
        ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts),
                         blobs=AppendBlobClient(http), output=output)
        command = Command(CommandId.SHELL, "echo fine", timeout=30)
        events = [e async for e in ssh.run(sshd.machine(), command, run_id="blobrun2")]
        await ssh.aclose()
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.state is RunState.SUCCEEDED


async def test_a_protected_value_never_reaches_the_output_blobs(
    sshd: Sshd, blob_target: BlobTarget
) -> None:
    canary = "Blob-canary-7f3e9d21"
    # Printed whole, and in two writes with a pause between, so that the second half
    # arrives in a later read of the channel than the first.
    script = ('echo "whole $TOKEN"; printf "split %s" "${TOKEN:0:9}"; sleep 0.3; '
              'echo "${TOKEN:9}"; echo "err $TOKEN" >&2')
    async with httpx.AsyncClient(timeout=10) as http:
        output = OutputContainer(blob_target.container_sas_url("racwl"))
        ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts),
                         blobs=AppendBlobClient(http), output=output)
        machine = sshd.machine()
        command = Command(CommandId.SHELL, script, timeout=60,
                          parameters=(Parameter("TOKEN", canary, protected=True),))
        events = [e async for e in ssh.run(machine, command, run_id="blobrun3")]
        await ssh.aclose()
        finished = events[-1]
        assert isinstance(finished, Finished) and finished.state is RunState.SUCCEEDED
        targets = output.targets("blobrun3", machine)
        stdout = await http.get(targets.output_uri, headers={"x-ms-version": "2021-12-02"})
        stderr = await http.get(targets.error_uri, headers={"x-ms-version": "2021-12-02"})
    assert stdout.content == b"whole ***\nsplit ***\n"
    assert stderr.content == b"err ***\n"
