"""Blob endpoints to test against: the sandbox's blob app, and Microsoft's Azurite.

A pytest plugin (``tests/conftest.py`` loads it), so ``tests/sandbox`` and ``tests/azure``
share one pair of servers. ``blob_target`` is parametrized over both, so a test that takes
it runs twice; tests that take ``sandbox_target`` or ``azurite_target`` run against one. Both
servers start once per session, on 127.0.0.1 with a free port, and stop at the end.

Azurite comes from ``make azurite`` (``make test`` runs it). When it is missing the Azurite
half is skipped with a hint, except under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from azure.storage.blob import BlobServiceClient, generate_blob_sas, generate_container_sas

from core.sandbox.blob_routes import create_blob_app
from core.sandbox.blobstore import BlobStore

ROOT = Path(__file__).resolve().parents[1]
AZURITE_BLOB = ROOT / ".cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
SANDBOX_ACCOUNT = "suiteaccount"
SANDBOX_KEY = "c2FuZGJveC1zdWl0ZS1rZXktbm90LWEtc2VjcmV0LTAxMjM0NTY3ODk="
CONTAINER = "suite"
VERSION = "2021-12-02"
"""The x-ms-version the suite sends unless a test says otherwise."""


class ShiftableClock:
    """The wall clock plus an offset a test can push forward (never back: SAS windows)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


@dataclass
class BlobTarget:
    """One blob endpoint with a container ready for the test's blobs."""

    name: str
    endpoint: str
    """``http://127.0.0.1:<port>/<account>``."""
    account: str
    key: str
    container: str

    def url(self, blob: str, sas: str | None = None, *, container: str | None = None) -> str:
        base = f"{self.endpoint}/{container or self.container}/{blob}"
        return f"{base}?{sas}" if sas else base

    def sas(self, blob: str, permissions: str, *, expiry: datetime | None = None,
            container: str | None = None) -> str:
        """A blob SAS made by Microsoft's SDK."""
        return generate_blob_sas(
            self.account, container or self.container, blob, account_key=self.key,
            permission=permissions, expiry=expiry or datetime.now(UTC) + timedelta(hours=1),
        )

    def sas_url(self, blob: str, permissions: str = "racw") -> str:
        return self.url(blob, self.sas(blob, permissions))

    def container_sas_url(self, permissions: str = "racw") -> str:
        """The container's URL with a container SAS (``sr=c``) made by Microsoft's SDK."""
        sas = generate_container_sas(
            self.account, self.container, account_key=self.key, permission=permissions,
            expiry=datetime.now(UTC) + timedelta(hours=1),
        )
        return f"{self.endpoint}/{self.container}?{sas}"


@dataclass
class SandboxTarget(BlobTarget):
    store: BlobStore = field(default_factory=BlobStore)
    clock: ShiftableClock = field(default_factory=ShiftableClock)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_answering(url: str, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite-blob exited early with status {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"azurite-blob did not answer on {url} within {timeout} s")


@pytest.fixture(scope="session")
def sandbox_target() -> Iterator[SandboxTarget]:
    clock = ShiftableClock()
    store = BlobStore(clock=clock)
    store.add_account(SANDBOX_ACCOUNT, SANDBOX_KEY)
    store.create_container(SANDBOX_ACCOUNT, CONTAINER)
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only then, and without it every
    # keep-alive request waits ~40 ms on Nagle and delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_blob_app(store), lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the sandbox blob server did not start")
        time.sleep(0.01)
    try:
        yield SandboxTarget(
            "sandbox", f"http://127.0.0.1:{port}/{SANDBOX_ACCOUNT}", SANDBOX_ACCOUNT,
            SANDBOX_KEY, CONTAINER, store=store, clock=clock,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def azurite_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BlobTarget]:
    if not AZURITE_BLOB.exists():
        message = f"Azurite is not installed at {AZURITE_BLOB}; run `make test` to install it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    workdir = tmp_path_factory.mktemp("azurite")
    port = _free_port()
    log = (workdir / "azurite.log").open("wb")
    # --location cannot be combined with --inMemoryPersistence (Azurite exits), so Azurite
    # runs in a private working directory instead: anything it might write lands there.
    proc = subprocess.Popen(
        [str(AZURITE_BLOB), "--blobHost", "127.0.0.1", "--blobPort", str(port),
         "--inMemoryPersistence", "--disableTelemetry", "--silent", "--skipApiVersionCheck"],
        cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    try:
        try:
            _wait_until_answering(endpoint, 20, proc)
        except RuntimeError as exc:
            log.flush()
            raise RuntimeError(f"{exc}\n{(workdir / 'azurite.log').read_text()}") from None
        service = BlobServiceClient(
            endpoint, credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY}
        )
        service.create_container(CONTAINER)
        yield BlobTarget("azurite", endpoint, AZURITE_ACCOUNT, AZURITE_KEY, CONTAINER)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


@pytest.fixture(params=["sandbox", "azurite"])
def blob_target(request: pytest.FixtureRequest) -> BlobTarget:
    target: BlobTarget = request.getfixturevalue(f"{request.param}_target")
    return target


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers={"x-ms-version": VERSION}) as client:
        yield client


@pytest.fixture
def blob_name() -> str:
    """A fresh blob name per test, with a slash in it like run-command output paths."""
    return f"runs/{uuid.uuid4().hex}/stdout.log"
