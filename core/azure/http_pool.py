"""A connection pool for httpcore's HTTP/1.1 connections whose bookkeeping is O(1) per request.

httpcore 1.0's own pool re-examines every connection each time a request arrives or an
answer is closed, and for each idle connection builds a list of all of them: at 32
connections that is about 2,000 ``is_idle`` calls per request, 1.5 ms of CPU on a 2-core
machine, about four times what the rest of the request costs (bench/http_cpu.py). Our use is
simpler than what that pool serves (HTTP/1.1 only, one request per connection, the body
always read at once), so this pool keeps idle connections on a stack per origin and takes
the top one.

The limits are those httpx's ``Limits(max_connections=n, max_keepalive_connections=n)``
gives: at most ``n`` connections open, each serving one request at a time; requests beyond
``n`` wait (without a pool timeout: a request waits for its turn however long the queue).
A connection idle past the keep-alive expiry, or one the server closed while it sat idle, is
closed instead of used.

The pool also asks every idle connection, before using it, whether the server closed it.
httpcore's asyncio streams answer by rebuilding a table of socket attributes (a system call
among them) before polling the socket; :class:`_IdleCheckedStream` finds the socket once and
only polls it.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import Iterable, MutableMapping
from typing import Any, NamedTuple

import httpcore

KEEPALIVE_EXPIRY = 5.0
"""Seconds an idle connection is kept, as httpx's default ``Limits`` has it."""


class Answer(NamedTuple):
    """A response read whole, in httpcore's terms."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    extensions: MutableMapping[str, Any]


class ConnectionPool:
    """HTTP/1.1 connections to any number of origins, at most ``connections`` open at once.

    Args:
        connections: Connections open at most, and requests sent at once.
        ssl_context: TLS settings for https origins.
        keepalive_expiry: Seconds an idle connection is kept.
        backend: Opens the sockets; httpcore's asyncio one when None.
    """

    def __init__(self, connections: int, ssl_context: ssl.SSLContext, *,
                 keepalive_expiry: float = KEEPALIVE_EXPIRY,
                 backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        if connections < 1:
            raise ValueError(f"connections {connections}: expected 1 or more")
        self._limit = connections
        self._slots = asyncio.Semaphore(connections)
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._backend = _IdleCheckedBackend(backend or httpcore.AnyIOBackend())
        self._open: set[httpcore.AsyncHTTPConnection] = set()
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        """Idle connections per origin, the most recently used last."""

    @property
    def connections(self) -> int:
        """Connections open now, idle or busy."""
        return len(self._open)

    async def send(self, request: httpcore.Request) -> Answer:
        """Send one request and read its whole answer.

        Raises:
            httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError: As
                httpcore's connection raises them; the connection is closed then.
        """
        async with self._slots:
            while True:
                connection = await self._connection_for(request.url.origin)
                try:
                    response = await connection.handle_async_request(request)
                    body = await response.aread()
                    await response.aclose()
                except httpcore.ConnectionNotAvailable:
                    # Taken as idle, then found unusable: a new connection takes the request.
                    await self._discard(connection)
                    continue
                except BaseException:
                    await self._discard(connection)
                    raise
                await self._release(connection, request.url.origin)
                return Answer(response.status, response.headers, body, response.extensions)

    async def aclose(self) -> None:
        """Close every connection, idle or busy."""
        connections, self._open = self._open, set()
        self._idle.clear()
        for connection in connections:
            await connection.aclose()

    async def _connection_for(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        idle = self._idle.get(_key(origin))
        while idle:
            connection = idle.pop()
            if connection.is_available() and not connection.has_expired():
                return connection
            await self._discard(connection)
        if len(self._open) >= self._limit:
            # This request holds a slot, so fewer than the limit are busy: the rest are idle
            # connections to other origins, and the one used longest ago makes room.
            await self._discard(self._least_recently_used())
        connection = httpcore.AsyncHTTPConnection(
            origin, ssl_context=self._ssl_context, keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend)
        self._open.add(connection)
        return connection

    async def _release(self, connection: httpcore.AsyncHTTPConnection,
                       origin: httpcore.Origin) -> None:
        if connection not in self._open or not connection.is_available():
            # The pool was closed meanwhile, or the server ended the connection.
            await self._discard(connection)
            return
        idle = self._idle.setdefault(_key(origin), [])
        idle.append(connection)
        # The stack's bottom is used least: close it once it has expired, one per request,
        # as httpcore's pool would on its next pass.
        if len(idle) > 1 and idle[0].has_expired():
            await self._discard(idle.pop(0))

    def _least_recently_used(self) -> httpcore.AsyncHTTPConnection:
        stacks = [stack for stack in self._idle.values() if stack]
        return stacks[0].pop(0)

    async def _discard(self, connection: httpcore.AsyncHTTPConnection) -> None:
        self._open.discard(connection)
        await connection.aclose()


_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    """An origin as a dictionary key (httpcore's Origin is not hashable)."""
    return origin.scheme, origin.host, origin.port


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
    """A network backend whose streams are wrapped in :class:`_IdleCheckedStream`."""

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
