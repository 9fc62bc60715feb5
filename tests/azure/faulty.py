"""An httpx transport that passes requests to the real server, failing some on purpose.

A test queues faults with :meth:`FaultyTransport.fail`; each matching request takes the
next one. Faults happen either before the request leaves (``busy``, ``refused``, ``reset``:
nothing reaches the server) or after the server has done the work (``lost``: the server
processed the request, then the answer is lost, which is the ambiguous case for appends).
``stale`` answers a read as if the blob were still empty (416, ``bytes */0``), which a read
can briefly see right after an append (reference section 8.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

Fault = Literal["busy", "refused", "reset", "lost", "stale"]

BUSY_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
    b"<Message>Ingress is over the account limit.\nRequestId:0\nTime:0</Message></Error>"
)


def is_append(request: httpx.Request) -> bool:
    return request.method == "PUT" and "comp=appendblock" in str(request.url)


def is_read(request: httpx.Request) -> bool:
    return request.method == "GET"


def is_create(request: httpx.Request) -> bool:
    return request.method == "PUT" and "comp=" not in str(request.url)


@dataclass
class Exchange:
    """One request as the server or the fault saw it."""

    method: str
    url: str
    headers: httpx.Headers
    fault: Fault | None
    status: int | None
    """The server's status; None when no answer came back."""


class FaultyTransport(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.plan: list[tuple[Callable[[httpx.Request], bool], Fault]] = []
        self.log: list[Exchange] = []

    def fail(self, fault: Fault, times: int = 1,
             when: Callable[[httpx.Request], bool] = lambda _: True) -> None:
        self.plan.extend([(when, fault)] * times)

    def statuses(self, when: Callable[[Exchange], bool] = lambda _: True) -> list[int | None]:
        return [exchange.status for exchange in self.log if when(exchange)]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault: Fault | None = None
        for index, (when, planned) in enumerate(self.plan):
            if when(request):
                fault = planned
                del self.plan[index]
                break
        exchange = Exchange(request.method, str(request.url), request.headers, fault, None)
        self.log.append(exchange)
        if fault == "busy":
            exchange.status = 503
            return httpx.Response(503, content=BUSY_BODY, headers={
                "x-ms-error-code": "ServerBusy", "Content-Type": "application/xml",
            })
        if fault == "stale":
            exchange.status = 416
            return httpx.Response(416, headers={
                "x-ms-error-code": "InvalidRange", "Content-Range": "bytes */0",
            })
        if fault == "refused":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if fault == "reset":
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        response = await self.inner.handle_async_request(request)
        if fault == "lost":
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
        exchange.status = response.status_code
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
