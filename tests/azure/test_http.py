"""The pooled HTTP client under the ARM and blob clients: connections are kept and reused,
one the server closed while it sat idle (or one idle past its keep-alive) is replaced, never
used; no more requests are in flight than the pool has connections; failures arrive as
httpx's errors, which the ARM and blob clients retry."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpcore
import httpx
import pytest

from core.azure.http import parsed_url, pooled_client, send, ssl_context
from core.azure.http_pool import ConnectionPool
from core.sandbox.tls import ensure_certificate

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


@dataclass
class KeepAliveServer:
    """Answers every request with ``ok`` over keep-alive connections; can drop them all."""

    connections: int = 0
    open: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open.append(writer)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def drop_all(self) -> None:
        """Close every connection without a word, as a server's idle timeout does."""
        for writer in self.open:
            writer.close()
            await writer.wait_closed()
        self.open.clear()


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    state = KeepAliveServer()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield state
        listener.close()


async def test_requests_reuse_a_kept_alive_connection(server: KeepAliveServer) -> None:
    async with pooled_client() as http:
        answers = [await http.get(f"http://127.0.0.1:{server.port}/{n}") for n in range(5)]

    assert [a.text for a in answers] == ["ok"] * 5
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    server: KeepAliveServer,
) -> None:
    url = f"http://127.0.0.1:{server.port}/"
    async with pooled_client() as http:
        first = await http.get(url)
        # On loopback the close has reached the client's socket once the server's is closed.
        await server.drop_all()
        second = await http.get(url)

    assert (first.text, second.text) == ("ok", "ok")
    assert server.connections == 2


@dataclass
class GatedServer:
    """Holds every answer until ``gate`` opens; counts connections and requests in flight."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)
    connections: int = 0
    open_connections: int = 0
    most_open: int = 0
    waiting: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        self.most_open = max(self.most_open, self.open_connections)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                self.waiting += 1
                await self.gate.wait()
                self.waiting -= 1
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()


async def _until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(20):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


async def test_at_most_the_pool_size_is_in_flight_and_the_rest_wait_their_turn() -> None:
    state = GatedServer()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    async with listener, pooled_client(3) as http:
        requests = [asyncio.create_task(http.get(url)) for _ in range(10)]
        await _until(lambda: state.waiting == 3, "three requests reach the server")
        await asyncio.sleep(0.2)  # a fourth would have arrived by now if the pool let it
        assert state.waiting == 3
        state.gate.set()
        answers = await asyncio.gather(*requests)

    assert [a.text for a in answers] == ["ok"] * 10
    assert (state.connections, state.most_open) == (3, 3)


async def test_an_idle_connection_to_another_origin_makes_room_for_a_new_one(
    server: KeepAliveServer,
) -> None:
    other = KeepAliveServer()
    listener = await asyncio.start_server(other.handle, "127.0.0.1", 0)
    other_url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    async with listener, pooled_client(1) as http:
        first = await http.get(f"http://127.0.0.1:{server.port}/")
        second = await http.get(other_url)
        third = await http.get(f"http://127.0.0.1:{server.port}/")

    assert [a.text for a in (first, second, third)] == ["ok"] * 3
    assert (server.connections, other.connections) == (2, 1)


async def test_a_connection_idle_past_its_keep_alive_is_replaced(server: KeepAliveServer) -> None:
    pool = ConnectionPool(4, ssl_context(True), keepalive_expiry=0.0)
    request = httpcore.Request("GET", f"http://127.0.0.1:{server.port}/",
                               headers={"Host": f"127.0.0.1:{server.port}"})
    try:
        answers = [await pool.send(request) for _ in range(3)]
    finally:
        await pool.aclose()

    assert [a.body for a in answers] == [b"ok"] * 3
    assert server.connections == 3


async def test_a_refused_connection_is_httpx_s_connect_error() -> None:
    spare = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = spare.sockets[0].getsockname()[1]
    spare.close()
    await spare.wait_closed()
    async with pooled_client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_an_answer_cut_short_is_httpx_s_error_and_its_connection_is_not_reused() -> None:
    connections = 0

    async def cut_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        first = connections == 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                # The first connection promises 10 bytes, sends 2 and hangs up.
                writer.write(RESPONSE.replace(b"Length: 2", b"Length: 10") if first else RESPONSE)
                await writer.drain()
                if first:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(cut_once, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    async with listener, pooled_client(1) as http:
        with pytest.raises(httpx.TransportError) as failed:
            await http.get(url)
        again = await http.get(url)

    assert isinstance(failed.value, httpx.RemoteProtocolError | httpx.ReadError)
    assert (again.text, connections) == ("ok", 2)


async def test_a_cancelled_request_gives_its_place_back() -> None:
    state = GatedServer()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
    async with listener, pooled_client(1) as http:
        stuck = asyncio.create_task(http.get(url))
        await _until(lambda: state.waiting == 1, "the first request reaches the server")
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        state.gate.set()
        answer = await http.get(url)

    assert answer.text == "ok"
    assert state.connections == 2


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A keep-alive server behind a self-signed certificate: its URL and the certificate."""
    files = ensure_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.certificate, files.private_key)
    state = KeepAliveServer()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0, ssl=context)
    async with listener:
        yield f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}/", files.certificate


async def test_tls_is_verified_against_the_system_s_authorities_by_default(
    tls_server: tuple[str, Path],
) -> None:
    url, _ = tls_server
    async with pooled_client() as http:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await http.get(url)


async def test_tls_is_verified_against_a_ca_bundle_given_by_path_or_not_at_all(
    tls_server: tuple[str, Path],
) -> None:
    url, certificate = tls_server
    async with pooled_client(verify=str(certificate)) as trusting:
        trusted = await trusting.get(url)
    async with pooled_client(verify=False) as unverified:
        unchecked = await unverified.get(url)

    assert (trusted.text, unchecked.text) == ("ok", "ok")


@dataclass
class RecordingServer:
    """Answers ``ok`` and keeps each request's head and body as the server saw them."""

    seen: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                self.seen.append((head, await reader.readexactly(length)))
                writer.write(RESPONSE)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_the_pooled_client_s_short_cut_sends_what_httpx_s_client_sends() -> None:
    state = RecordingServer()
    listener = await asyncio.start_server(state.handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/sub/x%20y?sig=s%2Bt&a=1"
    heard: list[str] = []

    async def on_response(response: httpx.Response) -> None:
        heard.append(f"{response.request.method} {response.status_code}")

    async with listener, pooled_client() as pooled, httpx.AsyncClient(timeout=10) as plain:
        pooled.event_hooks = {"response": [on_response]}
        answers = []
        for http in (pooled, plain):
            target = parsed_url(url, {"api-version": "2025-04-01", "a": "2"})
            answers.append(await send(http, "PUT", target, {"x-ms-version": "2021-12-02"},
                                      json={"properties": {"async": True}}))
            answers.append(await send(http, "GET", parsed_url(url), {}))

    fast, slow = state.seen[:2], state.seen[2:]
    assert fast == slow
    assert fast[0][0].startswith(b"PUT /sub/x%20y?sig=s%2Bt&a=2&api-version=2025-04-01 ")
    assert b"x-ms-version: 2021-12-02" in fast[0][0] and b"User-Agent: python-httpx" in fast[0][0]
    assert fast[0][1] == b'{"properties":{"async":true}}'
    assert [(a.status_code, a.text, a.request.method) for a in answers] == [
        (200, "ok", "PUT"), (200, "ok", "GET")] * 2
    assert heard == ["PUT 200", "GET 200"]


async def test_the_short_cut_keeps_httpx_s_errors_and_refuses_a_closed_client() -> None:
    spare = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    url = parsed_url(f"http://127.0.0.1:{spare.sockets[0].getsockname()[1]}/")
    spare.close()
    await spare.wait_closed()
    async with pooled_client() as http:
        with pytest.raises(httpx.ConnectError) as refused:
            await send(http, "GET", url, {})
    assert refused.value.request.url == url
    with pytest.raises(RuntimeError, match="closed"):
        await send(http, "GET", url, {})


def test_a_url_is_parsed_once_and_its_parameters_merged_as_httpx_merges_them() -> None:
    url = "https://acct.blob.core.windows.net/c/b?sv=2021-12-02&sig=abc%2B%3D"

    assert parsed_url(url) is parsed_url(url)
    assert parsed_url(url, {"sv": "x"}) == httpx.URL(url).copy_merge_params({"sv": "x"})
    assert parsed_url(url) == httpx.URL(url)
