"""The HTTP transport under the ARM and blob clients: httpx in front, a lean pool behind.

:class:`BoundedTransport` is an httpx transport over :class:`~core.azure.http_pool.
ConnectionPool` (see there why it is not httpcore's own pool): at most ``connections``
requests in flight, each answer read whole before its connection is reused, httpcore's
errors raised as httpx's, as httpx's own transport does.

:func:`send` is how the ARM and blob clients send. Given a :class:`PooledClient` it hands
the request straight to the transport: httpx's client would otherwise run its auth flow,
redirect loop, cookie jar (a copy of every answer's headers into an ``email.message``) and
logging for each request, none of which these clients use (event hooks are kept). With
:func:`parsed_url`, which parses each URL once instead of every time, that is about 15 % of
a blob read's CPU (bench/http_cpu.py). Any other client (tests hand in in-process ones)
gets the same request through ``client.send``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

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


class PooledClient(httpx.AsyncClient):
    """An AsyncClient over a :class:`BoundedTransport`, which :func:`send` may use directly.

    No proxies from the environment: httpx takes none when it is given a transport.
    """

    def __init__(self, transport: BoundedTransport) -> None:
        super().__init__(transport=transport, timeout=TIMEOUT)
        self.bounded = transport
        self.timeouts: dict[str, Any] = {"timeout": TIMEOUT.as_dict()}


def pooled_client(
    connections: int = DEFAULT_CONNECTIONS, *, verify: bool | str | ssl.SSLContext = True
) -> PooledClient:
    """A :class:`PooledClient` of ``connections`` connections (the caller closes it)."""
    return PooledClient(BoundedTransport(connections, verify=verify))


async def send(http: httpx.AsyncClient, method: str, url: httpx.URL,
               headers: Mapping[str, str], *, content: bytes | None = None,
               json: Any = None) -> httpx.Response:
    """Send one request with ``http``'s own headers, timeouts and event hooks; read its answer.

    No redirect is followed (httpx follows none by default either) and no cookie kept.

    Raises:
        httpx.TransportError: No answer came (``request`` set on it, as httpx does).
        RuntimeError: The client is closed.
    """
    merged = http.headers.copy()
    merged.update(headers)
    if not isinstance(http, PooledClient):
        request = http.build_request(method, url, headers=merged, content=content, json=json)
        return await http.send(request)
    if http.is_closed:
        raise RuntimeError("Cannot send a request, as the client has been closed.")
    request = httpx.Request(method, url, headers=merged, content=content, json=json,
                            extensions=http.timeouts)
    hooks = http.event_hooks
    for hook in hooks["request"]:
        await hook(request)
    try:
        response = await http.bounded.handle_async_request(request)
    except httpx.TransportError as exc:
        exc.request = request
        raise
    response.request = request
    for hook in hooks["response"]:
        await hook(response)
    await response.aread()
    return response


_PARSED: dict[tuple[str, tuple[tuple[str, str], ...]], httpx.URL] = {}
PARSED_URLS_KEPT = 1 << 16
"""URLs :func:`parsed_url` keeps: a few per machine (its run command, its two blobs)."""


def parsed_url(url: str, params: Mapping[str, str] | None = None) -> httpx.URL:
    """``url`` with ``params`` merged into its query, as httpx makes it, parsed once.

    httpx checks every character of a URL each time it parses one, and a blob URL carries a
    SAS of a few hundred; the same URLs are read every second while a run goes.
    """
    key = (url, tuple(params.items()) if params else ())
    found = _PARSED.get(key)
    if found is None:
        found = httpx.URL(url)
        if params:
            found = found.copy_merge_params(dict(params))
        if len(_PARSED) >= PARSED_URLS_KEPT:
            _PARSED.clear()
        _PARSED[key] = found
    return found
