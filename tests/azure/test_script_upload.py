"""A script over the 256 KiB inline limit goes by scriptUri: uploaded once per run, a read
SAS per machine (or the machines' identity), protected values never in the file; and no SAS
signature fleetrun signs shows up in an event, an error or a log line."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from core.azure.arm import ArmClient, RetryPolicy
from core.azure.auth import StaticToken
from core.azure.blob import AppendBlobClient
from core.azure.delegated_output import DelegatedOutput
from core.azure.session import AzureSession, OutputContainer, Pacing
from core.backends.arc import ArcBackend
from core.backends.compute import ComputeBackend
from core.backends.managed import ManagedRunCommands
from core.events import Finished, MachineEvent
from core.journal_store import Journal
from core.model import (
    Command,
    CommandId,
    Machine,
    MachineKind,
    OsType,
    Parameter,
    RunState,
    utc_now,
)
from core.run_record import run_record
from core.run_view import RunView
from core.runner import RunSession, check_run
from core.validate import MAX_SCRIPT_BYTES, ValidationError

CONTAINER = "https://fleetout.blob.core.windows.net/fleetrun-output"
SECRET = "s3cret-canary-value"
BIG = "echo start\n" + "#" * MAX_SCRIPT_BYTES + "\necho \"$TOKEN\"\n"
KEY_VALUE = base64.b64encode(b"q" * 32).decode()
KEY_XML = ("<UserDelegationKey><SignedOid>o</SignedOid><SignedTid>t</SignedTid>"
           "<SignedStart>2026-11-01T00:00:00Z</SignedStart>"
           "<SignedExpiry>2099-11-02T00:00:00Z</SignedExpiry><SignedService>b</SignedService>"
           f"<SignedVersion>2026-10-06</SignedVersion><Value>{KEY_VALUE}</Value>"
           "</UserDelegationKey>")


@dataclass
class FakeAzure:
    """Recorded answers of ARM (one run command per machine) and of Storage."""

    upload_status: int = 201
    echo_put: bool = False
    """Refuse each PUT with a message quoting its outputBlobUri, SAS and all."""
    puts: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: list[httpx.Request] = field(default_factory=list)
    keys: int = 0

    def arm(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT":
            self.puts[path] = json.loads(request.content)
            if self.echo_put:
                uri = self.puts[path]["properties"]["outputBlobUri"]
                return httpx.Response(400, json={"error": {
                    "code": "InvalidParameter",
                    "message": f"outputBlobUri '{uri}' cannot be reached"}})
            return httpx.Response(201, json={"properties": {"provisioningState": "Creating"}})
        if request.method == "GET":
            return httpx.Response(200, json={"properties": {
                "provisioningState": "Succeeded",
                "instanceView": {"executionState": "Succeeded", "exitCode": 0,
                                 "output": "start\n", "error": ""}}})
        return httpx.Response(200)

    def storage(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer entra"
        if request.url.params.get("comp") == "userdelegationkey":
            self.keys += 1
            return httpx.Response(200, content=KEY_XML.encode())
        if request.method == "PUT":
            self.uploads.append(request)
            return httpx.Response(self.upload_status,
                                  headers={"x-ms-error-code": "AuthorizationPermissionMismatch"})
        return httpx.Response(404, headers={"x-ms-error-code": "BlobNotFound"})


@asynccontextmanager
async def session_over(fake: FakeAzure, identity: str | None = None
                       ) -> AsyncIterator[AzureSession]:
    async def bearer() -> str:
        return "entra"

    storage = httpx.AsyncClient(transport=httpx.MockTransport(fake.storage))
    arm_http = httpx.AsyncClient(transport=httpx.MockTransport(fake.arm))
    arm = ArmClient("https://management.azure.com", StaticToken("t" * 20), http=arm_http,
                    retry=RetryPolicy(attempts=2, backoff=0.01, backoff_cap=0.05,
                                      lro_poll_floor=0.01))
    output = OutputContainer(CONTAINER, identity, DelegatedOutput(storage, CONTAINER, bearer))
    try:
        yield AzureSession(arm, AppendBlobClient(storage, bearer), output,
                           Pacing(poll_interval=0.01, blob_interval=0.01, drain_grace=0.2))
    finally:
        await storage.aclose()
        await arm_http.aclose()


def machine(name: str, kind: MachineKind = MachineKind.VM) -> Machine:
    provider = "Microsoft.Compute/virtualMachines" if kind is MachineKind.VM \
        else "Microsoft.HybridCompute/machines"
    return Machine(id=f"/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/"
                   f"rg/providers/{provider}/{name}", name=name, kind=kind, os=OsType.LINUX,
                   location="westeurope")


COMMAND = Command(CommandId.SHELL, BIG, (Parameter("TOKEN", SECRET, protected=True),),
                  timeout=120)


async def run_all(backend: ManagedRunCommands, machines: list[Machine],
                  command: Command = COMMAND) -> list[MachineEvent]:
    async def one(m: Machine) -> list[MachineEvent]:
        return [event async for event in backend.run(m, command, run_id="r7")]

    done = await asyncio.wait_for(asyncio.gather(*(one(m) for m in machines)), timeout=60)
    return [event for events in done for event in events]


def signatures(bodies: dict[str, dict[str, Any]]) -> set[str]:
    found = set()
    for body in bodies.values():
        properties = body["properties"]
        for url in (properties["source"].get("scriptUri", ""), properties["outputBlobUri"],
                    properties["errorBlobUri"]):
            # As signed (base64) and as sent (percent-encoded): either may be quoted back.
            for sig in parse_qs(urlsplit(url).query).get("sig", []):
                found.add(quote(sig, safe=""))
                found.add(sig)
    return found


async def test_a_big_script_is_uploaded_once_and_each_machine_gets_a_read_sas(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeAzure()
    machines = [machine(f"vm-{i}") for i in range(4)]
    async with session_over(fake) as session:
        events = await run_all(ComputeBackend(session), machines)
    ends = [e for e in events if isinstance(e, Finished)]
    assert [e.state for e in ends] == [RunState.SUCCEEDED] * 4, ends
    (upload,) = fake.uploads
    assert fake.keys == 1
    assert upload.url.path == "/fleetrun-output/scripts/r7.sh"
    assert upload.headers["x-ms-blob-type"] == "BlockBlob"
    assert upload.content == BIG.encode() and SECRET.encode() not in upload.content
    for body in fake.puts.values():
        properties = body["properties"]
        assert set(properties["source"]) == {"scriptUri"}
        script_uri = urlsplit(properties["source"]["scriptUri"])
        assert script_uri.path == "/fleetrun-output/scripts/r7.sh"
        query = parse_qs(script_uri.query)
        assert query["sp"] == ["r"] and query["sr"] == ["b"]
        assert properties["protectedParameters"] == [{"name": "TOKEN", "value": SECRET}]
        assert parse_qs(urlsplit(properties["outputBlobUri"]).query)["sp"] == ["racw"]
    sigs = signatures(fake.puts)
    assert len(sigs) >= 4 * 2 + 1  # a writer per machine and stream, one reader
    shown = " ".join(repr(e) for e in events) + caplog.text
    assert not any(sig in shown for sig in sigs)


async def test_with_an_identity_vms_get_script_uri_managed_identity_and_arc_a_sas() -> None:
    fake = FakeAzure()
    async with session_over(fake, identity="") as session:
        await run_all(ComputeBackend(session), [machine("vm-1")])
        await run_all(ArcBackend(session), [machine("arc-1", MachineKind.ARC)])
    vm, arc = (b["properties"] for b in fake.puts.values())
    assert vm["source"] == {"scriptUri": f"{CONTAINER}/scripts/r7.sh",
                            "scriptUriManagedIdentity": {}}
    assert "sig=" in arc["source"]["scriptUri"] and "scriptUriManagedIdentity" not in arc["source"]
    assert len(fake.uploads) == 1


async def test_a_refused_upload_fails_the_machines_saying_why() -> None:
    fake = FakeAzure(upload_status=403)
    async with session_over(fake) as session:
        events = await run_all(ComputeBackend(session), [machine("vm-1"), machine("vm-2")])
    ends = [e for e in events if isinstance(e, Finished)]
    assert all(e.state is RunState.FAILED and e.error.startswith("script upload:") for e in ends)
    assert fake.puts == {} and len(fake.uploads) == 1


async def test_a_small_script_stays_inline() -> None:
    fake = FakeAzure()
    async with session_over(fake) as session:
        await run_all(ComputeBackend(session), [machine("vm-1")],
                      Command(CommandId.SHELL, "echo hi", timeout=60))
    (body,) = fake.puts.values()
    assert body["properties"]["source"] == {"script": "echo hi"} and fake.uploads == []


async def test_the_gate_lets_a_big_script_through_only_where_it_can_be_uploaded() -> None:
    fake = FakeAzure()
    vm = machine("vm-1")
    async with session_over(fake) as session:
        with_storage = ComputeBackend(session)
        assert check_run([(vm, COMMAND)], lambda _m: with_storage) == []
    without = ComputeBackend(AzureSession(session.arm))
    with pytest.raises(ValidationError) as caught:
        check_run([(vm, COMMAND)], lambda _m: without)
    assert "fleetrun azure setup-output" in str(caught.value.problems)
    with pytest.raises(ValidationError) as local:
        check_run([(vm.__class__(id="local", name="l", kind=MachineKind.LOCAL,
                                 os=OsType.LINUX), COMMAND)])
    assert "setup-output" not in str(local.value.problems)


async def test_no_signature_reaches_the_journal_an_export_or_an_error(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for echo in (False, True):
        fake = FakeAzure(echo_put=echo)
        journal_path = tmp_path / f"journal-{echo}.db"
        async with session_over(fake) as session:
            backend = ComputeBackend(session)
            run = RunSession.plan([(machine(f"vm-{i}"), COMMAND) for i in range(2)],
                                  lambda _m, b=backend: b, journal=Journal(journal_path),
                                  runs_root=tmp_path / f"runs-{echo}")
            await asyncio.wait_for(run.execute(), timeout=60)
        sigs = signatures(fake.puts)
        assert len(sigs) >= 2 * 2 + 1
        states = {mr.state for mr in run.run.machines.values()}
        assert states == ({RunState.FAILED} if echo else {RunState.SUCCEEDED})
        if echo:
            assert all("sig=REDACTED" in mr.error for mr in run.run.machines.values())
        record = json.dumps(run_record(RunView(run.run, run.output, utc_now())))
        stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
        for sig in sigs:
            assert sig not in record and sig not in caplog.text
            assert sig.encode() not in stored
