"""CPU per HTTP request on the client: the blob reads fleetrun sends, against plain httpx.

A keep-alive server in a process of its own answers every request at once with a small 206,
as Azure Storage answers a ranged read. N reads of 1,000 blob URLs (each with a SAS of ~200
characters) go out from 200 callers at once, as the pollers of a large run do, through:

- ``httpx``: an ``httpx.AsyncClient`` of 32 connections, ``client.request`` per read;
- ``pooled``: fleetrun's pooled client (core/azure/http.py), ``client.request`` per read;
- ``fleetrun``: ``AppendBlobClient.read`` on the pooled client, what a run sends.

This process's user and system CPU per request is reported (the server's is not counted).
CPU time is inflated on a loaded machine, so the load average is shown; compare rows of one
run rather than runs.

    python -m bench.http_cpu [--requests 3000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable

import httpx

from core.azure.blob import AppendBlobClient
from core.azure.http import DEFAULT_CONNECTIONS, pooled_client

CALLERS = 200
BLOBS = 1000
SAS = ("sv=2021-12-02&ss=b&srt=sco&sp=rwdlac&se=2026-12-31T00:00:00Z&st=2026-01-01T00:00:00Z"
       "&spr=https,http&sig=abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ%2Bklmnop%3D")
HEADERS = {"x-ms-version": "2021-12-02", "x-ms-range": "bytes=0-"}
SERVER = r'''
import asyncio
BODY = b"line 1\nline 2\n"
ANSWER = (b"HTTP/1.1 206 Partial Content\r\nContent-Length: 14\r\nContent-Range: bytes 0-13/14\r\n"
          b"ETag: \"0x8DB1234567890AB\"\r\nx-ms-version: 2021-12-02\r\n"
          b"x-ms-blob-type: AppendBlob\r\n"
          b"x-ms-creation-time: Sun, 06 Dec 2026 17:00:00 GMT\r\n"
          b"x-ms-request-id: 0d2f3a4b-0000-0000-0000-000000000000\r\n\r\n" + BODY)
class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.pending = transport, b""
    def data_received(self, data):
        self.pending += data
        while b"\r\n\r\n" in self.pending:
            _, self.pending = self.pending.split(b"\r\n\r\n", 1)
            self.transport.write(ANSWER)
async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
'''
Read = Callable[[str, int], Awaitable[object]]
"""A read of one blob from an offset."""


async def measure(name: str, read: Read, urls: list[str], requests: int) -> None:
    callers = asyncio.Semaphore(CALLERS)

    async def one(n: int) -> None:
        async with callers:
            await read(urls[n % len(urls)], 0)

    await asyncio.gather(*(one(n) for n in range(len(urls))))  # connections and URLs warm
    before, started = os.times(), time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(requests)))
    after, wall = os.times(), time.perf_counter() - started
    user = (after.user - before.user) / requests * 1e6
    system = (after.system - before.system) / requests * 1e6
    print(f"{name:>9} {requests:>8} {user:>7.0f} {system:>6.0f} {user + system:>7.0f} "
          f"{wall:>7.1f} {os.getloadavg()[0]:>5.1f}", flush=True)


async def run_all(port: int, requests: int, rounds: int) -> None:
    base = f"http://127.0.0.1:{port}/devstoreaccount1/fleetrun/runs/r1"
    urls = [f"{base}/vm{n:05d}/stdout?{SAS}" for n in range(BLOBS)]
    limits = httpx.Limits(max_connections=DEFAULT_CONNECTIONS,
                          max_keepalive_connections=DEFAULT_CONNECTIONS)
    print(f"{'client':>9} {'requests':>8} {'user us':>7} {'sys us':>6} {'CPU us':>7} "
          f"{'wall s':>7} {'load':>5}")
    for _ in range(rounds):
        async with httpx.AsyncClient(limits=limits, trust_env=False) as plain:
            async def plain_read(url: str, _: int) -> object:
                return await plain.request("GET", url, headers=HEADERS)
            await measure("httpx", plain_read, urls, requests)
        async with pooled_client() as pooled:
            async def pooled_read(url: str, _: int) -> object:
                return await pooled.request("GET", url, headers=HEADERS)
            await measure("pooled", pooled_read, urls, requests)
            await measure("fleetrun", AppendBlobClient(pooled).read, urls, requests)


async def main(requests: int, rounds: int) -> None:
    server = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVER,
                                                  stdout=asyncio.subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(await asyncio.wait_for(server.stdout.readline(), 30))
        await run_all(port, requests, rounds)
    finally:
        server.kill()
        await server.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.http_cpu")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
