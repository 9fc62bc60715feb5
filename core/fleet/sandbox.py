"""The ``sandbox`` fleet source: the emulated Azure fleet, reached like the real one.

The sandbox is served on loopback from a thread of its own, and fleetrun talks to it with
the very ARM client, blob client and backends it uses for Azure: only the base URL, the
sandbox's bearer token (random, handed over in memory) and its own container SAS differ.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.azure.arm import ArmClient
from core.azure.auth import StaticToken
from core.azure.blob import AppendBlobClient
from core.azure.budget import ArmBudget, BucketLimit, BudgetLimits
from core.azure.http import pooled_client
from core.azure.session import AzureSession, OutputContainer, Pacing
from core.fleet.azure import azure_fleet_source
from core.fleet.source import FleetError, FleetSource
from core.sandbox.access import DEFAULT_PRINCIPAL
from core.sandbox.background import BackgroundSandbox
from core.sandbox.fleet import FleetFileError, FleetSpec, default_fleet, load_fleet


def sandbox_pacing(fleet: FleetSpec) -> Pacing:
    """Poll about as often as the sandbox's agents report (its flush interval), and read each
    blob at most once per flush: a read sooner finds nothing new."""
    flush = fleet.flush_interval
    return Pacing(poll_interval=max(0.2, min(flush, 5.0)), blob_interval=max(0.1, flush),
                  drain_grace=max(3.0, 3 * flush), stall_after=max(2.0, 4 * flush))


def sandbox_budget(fleet: FleetSpec) -> ArmBudget:
    """The client's budget mirrors the buckets the sandbox enforces, as it would ARM's."""
    limits = fleet.throttle
    return ArmBudget(BudgetLimits(
        reads=BucketLimit(limits.reads.capacity, limits.reads.refill_per_second),
        writes=BucketLimit(limits.writes.capacity, limits.writes.refill_per_second),
        deletes=BucketLimit(limits.deletes.capacity, limits.deletes.refill_per_second),
    ))


def sandbox_source(spec: str) -> FleetSource:
    """``sandbox`` (the built-in demo fleet) or ``sandbox:FILE`` (a fleet file)."""
    _, _, path = spec.partition(":")
    try:
        fleet = load_fleet(Path(path)) if path.strip() else default_fleet()
    except FleetFileError as exc:
        raise FleetError(f"fleet {spec!r}: {exc}") from None
    sandbox = BackgroundSandbox(fleet)
    base_url = sandbox.start()
    # The sandbox's own token is opaque, but whose it is is known: its default principal;
    # or the fleet file's sandbox.caller, presenting that principal's token.
    caller = next((p for p in fleet.principals if p.name.lower() == fleet.caller.lower()),
                  None) if fleet.caller else None
    token, principal = ((caller.token, caller.name) if caller is not None
                        else (sandbox.token, DEFAULT_PRINCIPAL))
    arm = ArmClient(base_url, StaticToken(token), budget=sandbox_budget(fleet),
                    principal=principal)
    blob_http = pooled_client()
    session = AzureSession(
        arm=arm,
        blobs=AppendBlobClient(blob_http),
        output=OutputContainer(sandbox.container_url()),
        pacing=sandbox_pacing(fleet),
    )

    async def stop() -> None:
        await blob_http.aclose()
        await asyncio.to_thread(sandbox.stop)

    return azure_fleet_source(spec, session, fleet.subscriptions, on_close=stop)
