"""The pooled HTTP client under the ARM and blob clients: connections are kept and reused,
and one the server closed while it sat idle is noticed and replaced, never used."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from core.azure.http import pooled_client

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
