"""A run in ``output_mode = "user-delegation"``: one key per run, a SAS per blob and stream."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.azure.blob_errors import BlobError
from core.azure.delegated_output import EXPIRY_MARGIN, KEY_START_BACK, DelegatedOutput
from core.azure.session import OutputContainer
from core.model import Machine, MachineKind, OsType, Stream

NOW = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
CONTAINER = "https://fleetout.blob.core.windows.net/fleetrun-output"
KEY_VALUE = base64.b64encode(b"k" * 32).decode()


def key_xml(start: str, expiry: str) -> bytes:
    return (f"<UserDelegationKey><SignedOid>o</SignedOid><SignedTid>t</SignedTid>"
            f"<SignedStart>{start}</SignedStart><SignedExpiry>{expiry}</SignedExpiry>"
            "<SignedService>b</SignedService><SignedVersion>2026-10-06</SignedVersion>"
            f"<Value>{KEY_VALUE}</Value></UserDelegationKey>").encode()


class KeyService:
    """Answers Get User Delegation Key with the times asked for; counts the requests."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.asked: list[bytes] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request.content)
        if self.status != 200:
            return httpx.Response(self.status)
        body = request.content.decode()
        start = body.split("<Start>")[1].split("<")[0]
        expiry = body.split("<Expiry>")[1].split("<")[0]
        return httpx.Response(200, content=key_xml(start, expiry))


def machine(name: str) -> Machine:
    return Machine(id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
                   f"virtualMachines/{name}", name=name, kind=MachineKind.VM, os=OsType.LINUX)


def delegated(service: KeyService, now: datetime = NOW) -> DelegatedOutput:
    async def bearer() -> str:
        return "entra"

    http = httpx.AsyncClient(transport=httpx.MockTransport(service))
    return DelegatedOutput(http, CONTAINER, bearer, clock=lambda: now)


async def test_one_key_per_run_and_a_writer_sas_per_machine_and_stream() -> None:
    service = KeyService()
    output = OutputContainer(CONTAINER, delegated=delegated(service, datetime.now(UTC)))
    machines = [machine(f"web-{i:02}") for i in range(20)]

    async def one(m: Machine) -> tuple[str, str]:
        await output.prepare("r1", 600, m)
        targets = output.targets("r1", m)
        assert targets.identity is None
        return targets.output_uri, targets.error_uri

    urls = [u for pair in await asyncio.gather(*(one(m) for m in machines)) for u in pair]
    assert len(service.asked) == 1
    assert len({urlsplit(u).path for u in urls}) == 40
    for url in urls:
        query = parse_qs(urlsplit(url).query)
        assert query["sp"] == ["racw"] and query["sr"] == ["b"] and query["spr"] == ["https"]
        assert query["sig"] and query["skoid"] == ["o"]
    reads = output.read_urls("r1", machines[0])
    assert not urlsplit(reads[Stream.STDOUT]).query  # read with the user's token
    assert urlsplit(reads[Stream.STDOUT]).path == urlsplit(urls[0]).path
    await output.prepare("r2", 600, machines[0])
    assert len(service.asked) == 2


@pytest.mark.parametrize(("timeout", "lifetime"), [
    (600, timedelta(seconds=600) + EXPIRY_MARGIN),
    (0, timedelta(days=7) - timedelta(minutes=1)),
    (30 * 86400, timedelta(days=7) - timedelta(minutes=1)),
])
def test_a_keys_lifetime_is_the_timeout_and_a_margin_within_7_days(
        timeout: int, lifetime: timedelta) -> None:
    start, expiry = delegated(KeyService()).lifetime(timeout)
    assert start == NOW - KEY_START_BACK
    assert expiry == NOW + lifetime


async def test_a_refused_key_fails_every_machine_with_the_reason_once_asked() -> None:
    service = KeyService(status=403)
    output = OutputContainer(CONTAINER, delegated=delegated(service, datetime.now(UTC)))
    results = await asyncio.gather(*(output.prepare("r1", 60, machine("a")) for _ in range(5)),
                                   return_exceptions=True)
    assert len(service.asked) == 1
    assert all(isinstance(r, BlobError) and "generateUserDelegationKey" in str(r)
               for r in results)


async def test_with_an_identity_no_key_is_asked_and_urls_are_plain() -> None:
    service = KeyService()
    output = OutputContainer(CONTAINER, identity="", delegated=delegated(service))
    await output.prepare("r1", 60, machine("a"))
    targets = output.targets("r1", machine("a"))
    assert service.asked == [] and targets.identity == ""
    assert "?" not in targets.output_uri and targets.output_uri.startswith(CONTAINER + "/")


async def test_with_an_identity_arc_servers_still_get_a_writer_sas() -> None:
    # Arc has no managed identity for blobs (reference section 3): a SAS, and the key for it.
    service = KeyService()
    output = OutputContainer(CONTAINER, identity="", delegated=delegated(service))
    arc = Machine(id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.HybridCompute/"
                  "machines/h", name="h", kind=MachineKind.ARC, os=OsType.LINUX)
    await output.prepare("r1", 60, arc)
    targets = output.targets("r1", arc)
    assert len(service.asked) == 1 and targets.identity is None
    assert "sp=racw" in targets.output_uri and "sig=" in targets.error_uri
    assert output.targets("r1", machine("a")).identity == ""
