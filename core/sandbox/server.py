"""Serve the sandbox over HTTP(S) on loopback with uvicorn, inside the caller's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from core.sandbox.access import Access, check_principals, loopback_hosts, new_token
from core.sandbox.app import SandboxApp
from core.sandbox.service import SandboxService
from core.sandbox.tls import TlsFiles

LOOPBACK = "127.0.0.1"


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the host program owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _QuietDrops(logging.Filter):
    """The drop fault ends answers half-way on purpose; uvicorn need not report each one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


class SandboxServer:
    """The sandbox's ASGI app served on ``127.0.0.1``.

    Args:
        service: The sandbox state to serve.
        token: The bearer token ARM callers must present; a fresh random one when None
            (read it back from ``token``, in memory only).
        port: The port to bind; 0 picks a free one.
        tls: Certificate and key for HTTPS, or None for plain HTTP.

    Raises:
        ValueError: A principal of the fleet file holds ``token``.
    """

    def __init__(
        self, service: SandboxService, *, token: str | None = None, port: int = 0,
        tls: TlsFiles | None = None,
    ) -> None:
        self.service = service
        self.token = new_token() if token is None else token
        self._principals = {p.name: p.token for p in service.fleet.principals}
        check_principals(self.token, self._principals)
        self._tls = tls
        # proto=IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted connections (it
        # checks sock.proto); without it Nagle and delayed ACKs add ~40 ms per keep-alive call.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((LOOPBACK, port))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    async def start(self) -> str:
        """Start answering; returns the base URL."""
        options: dict[str, Any] = {}
        if self._tls is not None:
            options = {"ssl_certfile": str(self._tls.certificate),
                       "ssl_keyfile": str(self._tls.private_key)}
        access = Access(self.token, loopback_hosts(self.port), self._principals)
        config = uvicorn.Config(
            SandboxApp(self.service, access),
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
            **options,
        )
        logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
        self.service.sinks.own_netlocs.update({f"{LOOPBACK}:{self.port}",
                                               f"localhost:{self.port}"})
        self._server = _EmbeddedServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the sandbox server stopped while starting")
            await asyncio.sleep(0.01)
        return self.base_url

    async def wait(self) -> None:
        """Until the server stops (Ctrl-C in ``sandbox serve``)."""
        if self._task is not None:
            await self._task

    def request_stop(self) -> None:
        """Ask the server to finish (safe from a signal handler); ``wait`` then returns."""
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._socket.close()

