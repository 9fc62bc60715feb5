"""The HTTP transport under the ARM and blob clients: a pool that queues in front of itself.

With hundreds of machines polling, many requests wait for a pooled connection. httpcore's
pool re-examines every waiting request each time a connection frees up, which costs CPU in
proportion to the queue; a semaphore in front of the pool keeps the queue outside it, where
waiting costs nothing.
"""

from __future__ import annotations

import asyncio
import ssl

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
