"""The HTTP transport under the ARM and blob clients: httpx in front, a lean pool behind.

:class:`BoundedTransport` is an httpx transport over :class:`~core.azure.http_pool.
ConnectionPool` (see there why it is not httpcore's own pool): at most ``connections``
requests in flight, each answer read whole before its connection is reused, httpcore's
errors raised as httpx's, as httpx's own transport does.
"""

from __future__ import annotations

import os
import ssl

import httpcore
import httpx

from core.azure.http_pool import ConnectionPool

DEFAULT_CONNECTIONS = 32
TIMEOUT = httpx.Timeout(30.0, connect=10.0)

# httpcore's errors and httpx's share their names; the first match wins, subclasses first.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)
_HTTPCORE_ERRORS = tuple(core for core, _ in _ERRORS)


class BoundedTransport(httpx.AsyncBaseTransport):
    """An httpx transport over a :class:`ConnectionPool` of ``connections`` connections.

    Args:
        connections: Pooled (and kept-alive) connections, and requests let in at once.
        verify: TLS verification: True, False, a CA bundle path or an SSL context.
    """

    def __init__(
        self, connections: int = DEFAULT_CONNECTIONS, *, verify: bool | str | ssl.SSLContext = True
    ) -> None:
        self._pool = ConnectionPool(connections, ssl_context(verify))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        sent = httpcore.Request(
            request.method,
            httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                         target=url.raw_path),
            headers=request.headers.raw, content=request.stream, extensions=request.extensions)
        try:
            answer = await self._pool.send(sent)
        except _HTTPCORE_ERRORS as exc:
            raise _httpx_error(exc) from exc
        return httpx.Response(answer.status, headers=answer.headers,
                              stream=httpx.ByteStream(answer.body),
                              extensions=answer.extensions)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _httpx_error(exc: Exception) -> httpx.TransportError:
    for core_error, httpx_error in _ERRORS:
        if isinstance(exc, core_error):
            return httpx_error(str(exc))
    raise AssertionError(f"unmapped httpcore error {type(exc).__name__}")  # pragma: no cover


def ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS settings httpx makes of ``verify``; a path is a CA bundle file or directory."""
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def pooled_client(
    connections: int = DEFAULT_CONNECTIONS, *, verify: bool | str | ssl.SSLContext = True
) -> httpx.AsyncClient:
    """An AsyncClient over a :class:`BoundedTransport` (the caller closes it)."""
    return httpx.AsyncClient(transport=BoundedTransport(connections, verify=verify),
                             timeout=TIMEOUT)
