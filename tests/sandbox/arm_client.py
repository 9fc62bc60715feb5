"""A small ARM client for sandbox tests: a fleet, the app (in process or served), helpers.

Tests speak plain HTTP to the sandbox, as any ARM client would, so they check the API and
not the sandbox's internals. ``served=True`` puts a real uvicorn server on 127.0.0.1 in
front (faults such as dropped connections need one); otherwise httpx talks to the ASGI
app directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from core.sandbox.access import Access, new_token
from core.sandbox.app import SandboxApp
from core.sandbox.fleet import FleetSpec, parse_fleet
from core.sandbox.sas import sign_blob_sas
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService

SUB = "00000000-0000-4000-8000-000000000001"
RG = "rg-test"
COMPUTE = "2025-04-01"
ARC = "2025-01-13"
IN_PROCESS_HOST = "sandbox.test"
IN_PROCESS = f"http://{IN_PROCESS_HOST}"


def make_fleet(*machines: Mapping[str, Any], **sandbox: Any) -> FleetSpec:
    """A fleet of the given machine tables (name/kind/os at least), quick timings by default.

    Keyword arguments go to ``[sandbox]``, except ``faults`` and ``throttle`` which are
    tables of their own, ``principals``, a list of ``{name, token}`` tables (``roles`` too),
    ``roles``, a list of custom ``[[roles]]`` tables,
    ``storage_accounts``, a list of ``[[storage_accounts]]`` tables, and ``scale_sets``, a list
    of ``[[scale_sets]]`` tables (with ``machines`` empty, the fleet is those sets alone).
    """
    faults = sandbox.pop("faults", {})
    throttle = sandbox.pop("throttle", {})
    principals = sandbox.pop("principals", [])
    roles = sandbox.pop("roles", [])
    storage_accounts = sandbox.pop("storage_accounts", [])
    scale_sets = sandbox.pop("scale_sets", [])
    settings = {"flush_interval": 0.1, "pickup_delay": 0, "agent_timeout": 1, **sandbox}
    defaults = {"subscription": SUB, "resource_group": RG, "location": "westeurope"}
    return parse_fleet({
        "sandbox": settings,
        "faults": faults,
        "throttle": throttle,
        "principals": principals,
        "roles": roles,
        "storage_accounts": storage_accounts,
        "machines": [{**defaults, **m} for m in machines],
        "scale_sets": [{**defaults, **s} for s in scale_sets],
    })


@dataclass
class Api:
    service: SandboxService
    client: httpx.AsyncClient
    base_url: str
    app: SandboxApp | None = None
    """The app itself when it is called in process (None when served)."""

    @staticmethod
    def vm_path(name: str, group: str = RG, sub: str = SUB) -> str:
        return (f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute"
                f"/virtualMachines/{name}")

    @staticmethod
    def arc_path(name: str, group: str = RG, sub: str = SUB) -> str:
        return (f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.HybridCompute"
                f"/machines/{name}")

    def blob_url(self, blob: str, permissions: str = "racw") -> str:
        fleet = self.service.fleet
        expiry = datetime.now(UTC) + timedelta(hours=1)
        sas = sign_blob_sas(fleet.account, fleet.account_key, fleet.containers[0], blob,
                            permissions, expiry)
        return f"{self.base_url}/{fleet.account}/{fleet.containers[0]}/{blob}?{sas}"

    async def put(self, machine_path: str, name: str, properties: Mapping[str, Any], *,
                  version: str | None = None, location: str = "westeurope",
                  tags: Mapping[str, str] | None = None) -> httpx.Response:
        body: dict[str, Any] = {"location": location, "properties": dict(properties)}
        if tags:
            body["tags"] = dict(tags)
        return await self.client.put(f"{machine_path}/runCommands/{name}",
                                     params={"api-version": version or _version(machine_path)},
                                     json=body)

    async def get(self, machine_path: str, name: str, *, expand: bool = True,
                  version: str | None = None) -> httpx.Response:
        params = {"api-version": version or _version(machine_path)}
        if expand:
            params["$expand"] = "instanceView"
        return await self.client.get(f"{machine_path}/runCommands/{name}", params=params)

    async def delete(self, machine_path: str, name: str) -> httpx.Response:
        return await self.client.delete(f"{machine_path}/runCommands/{name}",
                                        params={"api-version": _version(machine_path)})

    async def view(self, machine_path: str, name: str) -> dict[str, Any]:
        response = await self.get(machine_path, name)
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()["properties"]["instanceView"]
        return view

    async def wait_for(self, machine_path: str, name: str,
                       done: Callable[[dict[str, Any]], bool] | None = None,
                       within: float = 15.0) -> dict[str, Any]:
        """The run command's body once ``done(body)`` holds (default: a terminal state)."""
        check = done or _terminal
        deadline = time.monotonic() + within
        while True:
            response = await self.get(machine_path, name)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if check(body):
                return body
            assert time.monotonic() < deadline, f"not done within {within} s: {body}"
            await asyncio.sleep(0.05)


def _terminal(body: Mapping[str, Any]) -> bool:
    state = body["properties"].get("instanceView", {}).get("executionState")
    return state in ("Succeeded", "Failed", "TimedOut", "Canceled")


def _version(path: str) -> str:
    return ARC if "hybridcompute" in path.lower() else COMPUTE


@asynccontextmanager
async def sandbox_api(
    fleet: FleetSpec, root: Path, *, served: bool = False, authorized: bool = True
) -> AsyncIterator[Api]:
    """A sandbox for ``fleet`` and a client pointed at it, presenting the sandbox's own
    token unless ``authorized`` is False (then no Authorization header at all)."""
    service = SandboxService(fleet, root=root)
    token = new_token()
    headers = {"Authorization": f"Bearer {token}"} if authorized else {}
    server = None
    app = None
    try:
        if served:
            server = SandboxServer(service, token=token)
            base = await server.start()
            client = httpx.AsyncClient(base_url=base, headers=headers, trust_env=False)
        else:
            base = IN_PROCESS
            service.sinks.own_netlocs.add(IN_PROCESS_HOST)
            principals = {p.name: p.token for p in fleet.principals}
            app = SandboxApp(service, Access(token, frozenset({IN_PROCESS_HOST}), principals))
            transport = httpx.ASGITransport(app=app)
            client = httpx.AsyncClient(transport=transport, base_url=base, headers=headers)
        async with client:
            yield Api(service, client, base, app)
    finally:
        if server is not None:
            await server.stop()
        await service.aclose()
