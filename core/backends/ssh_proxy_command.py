"""``ProxyCommand``: a command whose stdin and stdout carry the SSH connection.

asyncssh runs ProxyCommand itself, but it takes the end of the command's stderr for the
end of the connection: a proxy that redirects its stderr (``2>/dev/null``, common in
configs) or closes it drops the connection before the SSH banner. Here only stdout's end
ends it; stderr is kept (its last lines) to say why a proxy that dies early died. The
command is passed to asyncssh as a tunnel (its ``create_connection`` protocol), so the
connection is opened as any other, and closing it ends the command.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import FleetrunError

STDERR_KEPT = 2048
"""Bytes of the command's stderr kept for the message when it fails."""


class ProxyCommandError(FleetrunError, ConnectionError):
    """The proxy command ended before the connection did; its stderr says why, if it did."""


class ProxyCommandTunnel:
    """Runs ``argv`` for each connection asked of it (asyncssh's tunnel protocol)."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = tuple(argv)

    async def create_connection(self, session_factory: Callable[[], asyncio.Protocol],
                                host: str, port: int) -> tuple[_CommandPipe, asyncio.Protocol]:
        del host, port  # already expanded into the command (%h %p)
        loop = asyncio.get_running_loop()
        session = session_factory()
        _, pipe = await loop.subprocess_exec(
            lambda: _CommandPipe(session), *self.argv, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        return pipe, session

    def __str__(self) -> str:
        return " ".join(self.argv)


class _CommandPipe(asyncio.SubprocessProtocol):
    """The command's pipes as the connection's transport: write to stdin, read stdout."""

    def __init__(self, session: asyncio.Protocol) -> None:
        self._session = session
        self._process: asyncio.SubprocessTransport | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._stderr = b""
        self._ended = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self._process = transport
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        self._stdin = stdin
        self._session.connection_made(self)  # type: ignore[arg-type]  # a transport in all but name

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self._session.data_received(data)
        else:
            self._stderr = (self._stderr + data)[-STDERR_KEPT:]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd != 1 or self._ended:
            return  # stderr (or stdin) closing is no end of the connection
        self._ended = True
        said = self._stderr.decode(errors="replace").strip().splitlines()
        if exc is None and said:
            exc = ProxyCommandError(f"the proxy command ended: {said[-1]}")
        self._session.connection_lost(exc)

    def write(self, data: bytes) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._process.get_extra_info(name, default) if self._process else default

    def close(self) -> None:
        """Ends the command (SIGKILL, as asyncio closes a subprocess)."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.close()
            self._process = None

    def abort(self) -> None:
        self.close()
