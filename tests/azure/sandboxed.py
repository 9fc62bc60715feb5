"""fleetrun's Azure clients pointed at a sandbox served on loopback: the test bed of issue 4.

Tests get the sandbox's state (``service``, to look behind the API) and an
:class:`AzureSession` wired exactly as ``--fleet sandbox`` wires it, over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from core.azure.arm import ArmClient, RetryPolicy
from core.azure.auth import StaticToken
from core.azure.blob import AppendBlobClient
from core.azure.budget import ArmBudget
from core.azure.session import AzureSession, OutputContainer, Pacing
from core.backends.arc import ArcBackend
from core.backends.compute import ComputeBackend
from core.backends.managed import ManagedRunCommands
from core.model import Machine, MachineKind, OsType
from core.sandbox.fleet import FleetSpec, parse_fleet
from core.sandbox.sas import sign_container_sas
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService

SUB = "00000000-0000-4000-8000-00000000c0de"
RG = "rg"
FAST = Pacing(poll_interval=0.1, blob_interval=0.05, drain_grace=3, stall_after=0.5,
              delete_retry_pauses=(0.1, 0.2, 0.4, 0.8))
"""Pacing for tests: the sandbox's agents flush every 0.1 s there."""


def fleet_of(*machines: Mapping[str, Any], **tables: Any) -> FleetSpec:
    """A fleet of machine tables (name, kind, os at least) with quick timings.

    Keyword arguments are top-level tables (``faults``, ``throttle``, the ``scale_sets`` and
    ``storage_accounts`` lists) or ``[sandbox]`` keys.
    """
    own = {key: tables.pop(key) for key in ("faults", "throttle", "scale_sets",
                                            "storage_accounts", "principals", "roles")
           if key in tables}
    sandbox = {"flush_interval": 0.1, "pickup_delay": 0, "agent_timeout": 1, **tables}
    defaults = {"subscription": SUB, "resource_group": RG, "location": "westeurope"}
    return parse_fleet({"sandbox": sandbox, **own, "defaults": defaults,
                        "machines": [{**defaults, **m} for m in machines]})


def instance_of(scale_set: str, instance: int, *, sub: str = SUB, group: str = RG) -> Machine:
    """A Uniform scale set's instance as Resource Graph's listing names it."""
    return Machine(
        id=(f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute"
            f"/virtualMachineScaleSets/{scale_set}/virtualMachines/{instance}"),
        name=f"{scale_set}/{instance}", kind=MachineKind.VM, os=OsType.LINUX,
        location="westeurope", subscription=sub,
        tags={"scaleset": scale_set, "orchestration": "Uniform"},
    )


def machine_of(name: str, kind: str = "vm", *, sub: str = SUB, group: str = RG) -> Machine:
    provider = ("Microsoft.Compute/virtualMachines" if kind == "vm"
                else "Microsoft.HybridCompute/machines")
    return Machine(
        id=f"/subscriptions/{sub}/resourceGroups/{group}/providers/{provider}/{name}",
        name=name, kind=MachineKind.VM if kind == "vm" else MachineKind.ARC,
        os=OsType.LINUX, location="westeurope", subscription=sub,
    )


@dataclass
class AzureBed:
    service: SandboxService
    session: AzureSession
    base_url: str

    def backend(self, kind: str = "vm") -> ManagedRunCommands:
        return ComputeBackend(self.session) if kind == "vm" else ArcBackend(self.session)

    def backend_for(self, machine: Machine) -> ManagedRunCommands:
        return self.backend("vm" if machine.kind is MachineKind.VM else "arc")

    @property
    def arm(self) -> ArmClient:
        return self.session.arm


@asynccontextmanager
async def azure_bed(
    fleet: FleetSpec,
    root: Path,
    *,
    pacing: Pacing = FAST,
    budget: ArmBudget | None = None,
    retry: RetryPolicy | None = None,
    output: bool = True,
    delete_finished: bool = True,
    caller: str = "",
    arm_log: list[str] | None = None,
) -> AsyncIterator[AzureBed]:
    """A served sandbox for ``fleet`` and an AzureSession pointed at it.

    ``caller``: the fleet principal whose token the session presents (default the
    sandbox's own, Owner everywhere). ``arm_log``: each ARM request the session sends is
    appended to it as ``METHOD path`` (what a test counts).
    """
    service = SandboxService(fleet, root=root)
    server = SandboxServer(service)
    http = httpx.AsyncClient(timeout=10)
    arm_http: httpx.AsyncClient | None = None
    if arm_log is not None:
        async def logged(request: httpx.Request) -> None:
            arm_log.append(f"{request.method} {request.url.path}")

        arm_http = httpx.AsyncClient(timeout=10, event_hooks={"request": [logged]})
    session: AzureSession | None = None
    try:
        base = await server.start()
        container = fleet.containers[0]
        expiry = datetime.now(UTC) + timedelta(hours=1)
        sas = sign_container_sas(fleet.account, fleet.account_key, container, "racwl", expiry)
        session = AzureSession(
            arm=ArmClient(base, StaticToken(_token_of(fleet, caller) or server.token),
                          budget=budget, retry=retry, http=arm_http),
            blobs=AppendBlobClient(http) if output else None,
            output=OutputContainer(f"{base}/{fleet.account}/{container}?{sas}")
            if output else None,
            pacing=pacing,
            delete_finished=delete_finished,
        )
        yield AzureBed(service, session, base)
    finally:
        if session is not None:
            await session.aclose()
        await http.aclose()
        if arm_http is not None:
            await arm_http.aclose()
        await server.stop()
        await service.aclose()


def _token_of(fleet: FleetSpec, caller: str) -> str:
    """The token of the fleet's principal named ``caller`` ("" for none)."""
    if not caller:
        return ""
    return next(p.token for p in fleet.principals if p.name.lower() == caller.lower())
