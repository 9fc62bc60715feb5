"""When a process's first connection reaches the host: a loopback relay that notes it.

Start-up, for a command that works on hosts, ends when it starts working on one: when its
first TCP connection arrives. :class:`FirstConnectionRelay` listens on a loopback port,
notes the moment its first connection is accepted, and relays every connection, byte for
byte both ways, to the real server (the bench's sshd), so the command runs to its end as
usual and its result can be checked. The relay runs in threads of the bench's own process,
not the measured one; its only cost to the command is a loopback hop per packet.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

CHUNK = 65536


class FirstConnectionRelay:
    """A loopback port that relays every connection to ``127.0.0.1:target_port``;
    :attr:`first` is when (``time.perf_counter``) the first one since :meth:`reset` came."""

    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.first: float | None = None
        self._accepting = threading.Thread(target=self._accept, name="relay-accept",
                                           daemon=True)

    def __enter__(self) -> FirstConnectionRelay:
        self._accepting.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._listener.close()  # accept() fails: the accepting thread ends

    def reset(self) -> None:
        self.first = None

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.first is None:
                self.first = time.perf_counter()
            try:
                server = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                client.close()
                continue
            for either in (client, server):  # as ssh and sshd do: no Nagle delay per packet
                either.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=_relay, args=(client, server), name="relay",
                             daemon=True).start()


def _relay(client: socket.socket, server: socket.socket) -> None:
    """Both directions until both ended, then close both."""
    back = threading.Thread(target=_pump, args=(server, client), name="relay-back",
                            daemon=True)
    back.start()
    _pump(client, server)
    back.join()
    client.close()
    server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy ``source`` to ``sink`` until ``source`` ends, then end ``sink``'s writing half."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:  # reset by either side: the relay mirrors what the peers did
        for either in (source, sink):
            try:
                either.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass(frozen=True)
class FirstConnection:
    """One process through the relay: seconds from spawning it to its first connection
    (None: it never connected), and to its exit."""

    to_first_connection: float | None
    wall: float
    error: str = ""


def time_first_connection(relay: FirstConnectionRelay, command: Sequence[str],
                          env: dict[str, str], cwd: Path, *, expect: str,
                          timeout: float) -> FirstConnection:
    """Run ``command`` (whose host is ``relay``'s port); its stdout must contain ``expect``."""
    relay.reset()
    spawned = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - spawned
    first = None if relay.first is None else relay.first - spawned
    if done.returncode != 0:
        error = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}"
    elif expect not in done.stdout:
        error = f"no {expect!r} in its output: {done.stdout.strip()[-300:]!r}"
    elif first is None:
        error = "it never connected through the relay"
    else:
        error = ""
    return FirstConnection(first, wall, error)
