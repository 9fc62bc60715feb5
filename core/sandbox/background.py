"""The sandbox served from a thread of its own, the way fleetrun uses it as its default fleet.

In its own thread and event loop the sandbox behaves like the remote service it emulates:
fleetrun's clients reach it only over HTTP on loopback, and the sandbox's work (agents,
scripts, blob flushes) never competes with the front end's event loop for turns.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.sandbox.access import new_token
from core.sandbox.fleet import FleetSpec
from core.sandbox.sas import sign_container_sas
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService
from core.sandbox.tls import TlsFiles

START_TIMEOUT = 30.0


class BackgroundSandbox:
    """A sandbox fleet served on ``127.0.0.1`` from a daemon thread.

    Its ARM half answers only ``token`` (fresh per instance); its blobs need a SAS signed
    with the fleet's account key (random per process unless the fleet file sets one).

    Args:
        fleet: The fleet to emulate.
        root: Where the simulated machines keep their working directories (a private
            temporary directory when None).
        port: The port to bind; 0 picks a free one.
        tls: Certificate and key to serve HTTPS with (clients that send bearer tokens only
            over HTTPS, such as azure-storage-blob with a token credential); None: HTTP.
    """

    def __init__(
        self, fleet: FleetSpec, *, root: Path | None = None, port: int = 0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.fleet = fleet
        self._root = root
        self._port = port
        self._tls = tls
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.base_url = ""
        self.token = new_token()
        """The bearer token this sandbox accepts: handed to fleetrun's own client in memory,
        never written anywhere, so no other process on the machine can call it."""

    def start(self) -> str:
        """Start serving and return the base URL (ARM and blob endpoints share it)."""
        if self._thread is not None:
            return self.base_url
        self._thread = threading.Thread(target=self._main, name="fleetrun-sandbox", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError(f"the sandbox did not start within {START_TIMEOUT:g} s")
        if self._error is not None:
            raise RuntimeError(f"the sandbox could not start: {self._error}") from self._error
        return self.base_url

    def stop(self) -> None:
        """Stop serving, kill any script still running, and remove the sandbox's files."""
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=START_TIMEOUT)
        self._thread = None

    def container_url(self, *, hours: int = 24) -> str:
        """A SAS URL (read, add, create, write, list) for the fleet's first blob container."""
        fleet = self.fleet
        container = fleet.containers[0]
        expiry = datetime.now(UTC) + timedelta(hours=hours)
        sas = sign_container_sas(fleet.account, fleet.account_key, container, "racwl", expiry)
        return f"{self.base_url}/{fleet.account}/{container}?{sas}"

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        service = SandboxService(self.fleet, root=self._root)
        try:
            server = SandboxServer(service, token=self.token, port=self._port, tls=self._tls)
            try:
                self.base_url = await server.start()
                self._ready.set()
                await self._stop.wait()
            finally:
                await server.stop()
        finally:
            await service.aclose()
