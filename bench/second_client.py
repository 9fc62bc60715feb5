"""A second, non-fleetrun client of one subscription, for bench/azure's ``--second-client``.

It stands for the portal, a script or a monitoring tool: it GETs one VM (an ARM read that no
Compute operation group counts) at a steady rate for as long as it runs, with no pacing of
its own beyond that rate and no retries. It runs in a process of its own, so that its CPU is
not the measured client's, and on SIGTERM prints one line: ``sent N throttled M``.

    python -m bench.second_client URL RATE     (the bearer token in $SECOND_CLIENT_TOKEN)
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

TOKEN_ENV = "SECOND_CLIENT_TOKEN"


async def spend(url: str, rate: float, token: str) -> tuple[int, int]:
    """GET ``url`` ``rate`` times per second until SIGTERM; (sent, answered 429)."""
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sent = throttled = 0
    pending: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                 timeout=30) as http:
        async def one() -> None:
            nonlocal throttled
            try:
                answer = await http.get(url)
            except httpx.HTTPError:
                return
            throttled += answer.status_code == 429

        loop = asyncio.get_running_loop()
        start = loop.time()
        print("started", flush=True)
        while not stop.is_set():
            # Steady on the clock, not on the loop's turns: catch up after a late wake.
            due = start + sent / rate
            if loop.time() < due:
                try:
                    await asyncio.wait_for(stop.wait(), due - loop.time())
                except TimeoutError:
                    pass
                continue
            sent += 1
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
        if pending:
            await asyncio.wait(pending, timeout=10)
    return sent, throttled


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: python -m bench.second_client URL RATE")
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        raise SystemExit(f"bench.second_client: set ${TOKEN_ENV}")
    sent, throttled = asyncio.run(spend(argv[0], float(argv[1]), token))
    print(f"sent {sent} throttled {throttled}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
