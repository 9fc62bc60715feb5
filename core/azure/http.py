"""The HTTP transport under the ARM and blob clients: a pool that queues in front of itself.

With hundreds of machines polling, many requests wait for a pooled connection. httpcore's
pool re-examines every waiting request each time a connection frees up, which costs CPU in
proportion to the queue; a semaphore in front of the pool keeps the queue outside it, where
waiting costs nothing.

The pool also asks every idle connection, on every request, whether the server closed it.
httpcore's asyncio streams answer by rebuilding a table of socket attributes (a system call
among them) before polling the socket; :class:`_IdleCheckedStream` finds the socket once and
only polls it, which was about a tenth of the client's CPU at a few hundred machines.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

DEFAULT_CONNECTIONS = 32
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class BoundedTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, entered by at most ``connections`` requests at once.

    Args:
        connections: Pooled (and kept-alive) connections, and requests let in at once.
        verify: TLS verification: True, False, a CA bundle path or an SSL context.
    """

    def __init__(
        self, connections: int = DEFAULT_CONNECTIONS, *, verify: bool | str | ssl.SSLContext = True
    ) -> None:
        limits = httpx.Limits(max_connections=connections,
                              max_keepalive_connections=connections)
        self._inner = httpx.AsyncHTTPTransport(limits=limits, verify=verify)
        self._slots = asyncio.Semaphore(connections)
        # httpx takes no network backend; its pool does. Another httpx may lay it out
        # otherwise: then the pool keeps its own backend, which works, only slower.
        pool = getattr(self._inner, "_pool", None)
        if isinstance(pool, httpcore.AsyncConnectionPool):
            pool._network_backend = _IdleCheckedBackend(pool._network_backend)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        async with self._slots:
            response = await self._inner.handle_async_request(request)
            # The body is read inside the slot: the connection is busy until it is.
            await response.aread()
            return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def pooled_client(
    connections: int = DEFAULT_CONNECTIONS, *, verify: bool | str | ssl.SSLContext = True
) -> httpx.AsyncClient:
    """An AsyncClient over a :class:`BoundedTransport` (the caller closes it)."""
    return httpx.AsyncClient(transport=BoundedTransport(connections, verify=verify),
                             timeout=TIMEOUT)


class _IdleCheckedStream(httpcore.AsyncNetworkStream):
    """A pooled connection's stream whose "did the server close it?" check is one poll."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    # httpcore's interface passes timeouts as arguments (hence the noqa: ASYNC109).
    async def read(self, max_bytes: int, timeout: float | None = None  # noqa: ASYNC109
                   ) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None  # noqa: ASYNC109
                    ) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None,  # noqa: ASYNC109
                        ) -> httpcore.AsyncNetworkStream:
        return _IdleCheckedStream(
            await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would not block: data, or the end a closed connection reads as."""
    if sock.fileno() < 0:
        return True
    if not hasattr(select, "poll"):
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


class _IdleCheckedBackend(httpcore.AsyncNetworkBackend):
    """The pool's own network backend, its streams wrapped in :class:`_IdleCheckedStream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(self, host: str, port: int,
                          timeout: float | None = None,  # noqa: ASYNC109
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        return _IdleCheckedStream(await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address,
            socket_options=socket_options))

    async def connect_unix_socket(self, path: str,
                                  timeout: float | None = None,  # noqa: ASYNC109
                                  socket_options: Iterable[Any] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        return _IdleCheckedStream(await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
