"""The sandbox at fleet scale: simulated machines (no processes) behind its ARM API.

One measurement per fleet size:

- **api**: a bare ARM client over loopback HTTP (uvicorn, keep-alive, 16 requests in flight)
  PUTs a run command on every machine, then polls ``$expand=instanceView`` until every run
  is terminal. Reported: PUTs and GETs per second, wall time over the ideal (the slowest
  machine's simulated duration) and CPU per machine (client and server share the process,
  so this is an upper bound for the server).

fleetrun's own client (the fan-out through the Compute backend) is measured in ``bench/azure``.

Throttle budgets are set out of reach: this measures the emulator, not ARM's limits.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from core.sandbox.fleet import FleetSpec, parse_fleet
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService

SIZES = (100, 1_000, 10_000)
SUB = "00000000-0000-4000-8000-0000000000b1"
IN_FLIGHT = 16
DURATION = (1.0, 3.0)
ARM_WRITES = 10.0
"""ARM's write bucket refill per subscription per second (azure-run-command.md 7.2)."""


def _fleet(n: int) -> FleetSpec:
    big = {"capacity": 10**9, "refill_per_second": 10**6}
    return parse_fleet({
        "sandbox": {"flush_interval": 1, "pickup_delay": 0, "seed": n},
        "throttle": {"reads": big, "writes": big, "deletes": big},
        "machines": [{
            "name": "sim-{n:05}", "count": n, "kind": "vm", "os": "linux",
            "executor": "simulated", "subscription": SUB, "resource_group": "rg-bench",
            "location": "westeurope",
            "simulate": {"duration": list(DURATION), "lines": 3, "output": "line {line}\n"},
        }],
    })


async def _api(n: int, root: Path) -> dict[str, float]:
    service = SandboxService(_fleet(n), root=root)
    server = SandboxServer(service)
    base = await server.start()
    limits = httpx.Limits(max_connections=IN_FLIGHT, max_keepalive_connections=IN_FLIGHT)
    gate = asyncio.Semaphore(IN_FLIGHT)
    paths = [f"/subscriptions/{SUB}/resourceGroups/rg-bench/providers/Microsoft.Compute/"
             f"virtualMachines/{m.name}/runCommands/bench" for m in service.all_machines()]
    body: dict[str, Any] = {"location": "westeurope",
                            "properties": {"source": {"script": "simulated"}}}
    try:
        async with httpx.AsyncClient(base_url=base, limits=limits, trust_env=False,
                                     headers={"Authorization": f"Bearer {server.token}"}
                                     ) as client:

            async def put(path: str) -> None:
                async with gate:
                    response = await client.put(path, params={"api-version": "2025-04-01"},
                                                json=body)
                    assert response.status_code == 201, response.text

            async def done(path: str) -> bool:
                async with gate:
                    response = await client.get(path, params={"api-version": "2025-04-01",
                                                              "$expand": "instanceView"})
                state = response.json()["properties"]["instanceView"]["executionState"]
                return bool(state == "Succeeded")

            gc.collect()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(put(p) for p in paths))
            put_wall = time.perf_counter() - wall0
            pending, gets = list(paths), 0
            while pending:
                results = await asyncio.gather(*(done(p) for p in pending))
                gets += len(pending)
                pending = [p for p, ok in zip(pending, results, strict=True) if not ok]
                if pending:
                    await asyncio.sleep(0.5)
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
    finally:
        await server.stop()
        await service.aclose()
    return {"puts/s": n / put_wall, "gets/s": gets / max(wall - put_wall, 1e-9),
            "wall": wall, "cpu": cpu}


def main(quick: bool = False) -> None:
    sizes = SIZES[:2] if quick else SIZES
    ideal = DURATION[1]
    print(f"bench/sandbox: N simulated VMs ({DURATION[0]:g}-{DURATION[1]:g} s each, "
          f"flush 1 s); ideal wall = {ideal:g} s")
    print("PUT/s x ARM: PUT rate over ARM's sustained write budget per subscription (10/s)")
    print(f"{'N':>7} {'mode':<9} {'PUT/s':>8} {'x ARM':>6} {'GET/s':>8} {'wall s':>8} "
          f"{'wall/ideal':>10} {'CPU s':>7} {'CPU/machine':>12}")
    for n in sizes:
        for mode, measure in (("api", _api),):
            with tempfile.TemporaryDirectory() as tmp:
                result = asyncio.run(measure(n, Path(tmp)))
            puts = f"{'-':>8} {'-':>6}"
            if "puts/s" in result:
                puts = f"{result['puts/s']:>8.0f} {result['puts/s'] / ARM_WRITES:>6.0f}"
            gets = f"{result['gets/s']:>8.0f}" if "gets/s" in result else f"{'-':>8}"
            print(f"{n:>7} {mode:<9} {puts} {gets} {result['wall']:>8.2f} "
                  f"{result['wall'] / ideal:>10.2f} {result['cpu']:>7.2f} "
                  f"{result['cpu'] / n * 1e6:>9.0f} µs")


if __name__ == "__main__":
    main()
