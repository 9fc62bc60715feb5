"""A ProxyCommand for the tests: ``python tcp_relay.py HOST PORT [COUNT_FILE]``.

Relays its stdin to a TCP connection and the connection back to its stdout, as
``nc HOST PORT`` or ``ssh -W HOST:PORT`` would (neither is needed on the test machine).
With COUNT_FILE, appends a line to it per run, so a test can count the proxies started.
"""

from __future__ import annotations

import os
import socket
import sys
import threading


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    if len(sys.argv) > 3:
        with open(sys.argv[3], "a", encoding="utf-8") as count:
            count.write(f"{host}:{port}\n")
    sock = socket.create_connection((host, port))

    def upstream() -> None:
        while data := os.read(0, 65536):
            sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)

    threading.Thread(target=upstream, daemon=True).start()
    while data := sock.recv(65536):
        os.write(1, data)


if __name__ == "__main__":
    main()
