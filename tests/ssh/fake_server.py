"""An in-process asyncssh server and a TCP proxy that can misbehave, for SSH fault tests.

The server runs no real shell: every command prints ``started``, then a line every 50 ms
once it has read its stdin (the bootstrap's whole frame, or up to EOF for other payloads),
and exits 0. That is enough to see a connection die
mid-run; real script semantics are the contract suite's business (against OpenSSH).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core.backends.ssh_bootstrap import MAGIC
from core.model import Machine, MachineKind, OsType, SshEndpoint

Received = list[tuple[str, bytes]]


def _handler(received: Received) -> Callable[[asyncssh.SSHServerProcess[bytes]], Awaitable[None]]:
    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        process.stdout.write(b"started\n")
        data = b""
        with contextlib.suppress(asyncssh.Error, OSError):
            data = await _read_payload(process.stdin)
            received.append((process.command or "", data))
            for i in range(40):
                process.stdout.write(f"tick {i}\n".encode())
                await asyncio.sleep(0.05)
        process.exit(0)

    return handle


async def _read_payload(stdin: asyncssh.SSHReader[bytes]) -> bytes:
    """A bootstrap frame up to its script's last byte (the client keeps stdin open), or
    everything up to EOF for any other payload."""
    data = b""
    while chunk := await stdin.read(65536):
        data += chunk
        if _frame_complete(data):
            break
    return data


def _frame_complete(data: bytes) -> bool:
    if not data.startswith(MAGIC + b"\0"):
        return False
    fields = data.split(b"\0")
    try:
        named = int(fields[1])
        positional = int(fields[2 + named])
        length_at = 2 + named + 1 + positional + 1
        length = int(fields[length_at])
    except (IndexError, ValueError):
        return False
    header = len(b"\0".join(fields[:length_at + 1])) + 1
    return len(data) >= header + length


@dataclass
class FakeHost:
    port: int
    host_key: asyncssh.SSHKey
    client_key_path: Path
    known_hosts: Path
    received: Received
    """Each command line the server was asked to run, with what came on its stdin."""

    def machine(self, name: str = "fake", *, port: int | None = None) -> Machine:
        return Machine(
            id=f"ssh:{name}", name=name, kind=MachineKind.SSH, os=OsType.LINUX,
            address="127.0.0.1",
            ssh=SshEndpoint("127.0.0.1", port or self.port, "tester", str(self.client_key_path)),
        )

    def trust(self, key: asyncssh.SSHKey | None = None, port: int | None = None) -> None:
        """Write a known_hosts that trusts ``key`` (the real host key by default)."""
        public = (key or self.host_key).export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{port or self.port} {public}\n")


@contextlib.asynccontextmanager
async def fake_host(root: Path, *, authorize: bool = True) -> AsyncIterator[FakeHost]:
    """A loopback SSH server; ``authorize=False`` refuses our client key."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    other = asyncssh.generate_private_key("ssh-ed25519")
    key_path = root / "client_key"
    client_key.write_private_key(str(key_path))
    allowed = client_key if authorize else other
    received: Received = []
    server = await asyncssh.listen(
        "127.0.0.1", 0, server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(
            allowed.export_public_key().decode()),
        process_factory=_handler(received), encoding=None,
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield FakeHost(port, host_key, key_path, root / "known_hosts", received)
    finally:
        server.close()
        await server.wait_closed()


class Proxy:
    """Forwards a loopback port to another; ``blackhole()`` silently stops forwarding."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.dark = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def blackhole(self) -> None:
        self.dark = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if not self.dark:
                    sink.write(data)
                    await sink.drain()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
