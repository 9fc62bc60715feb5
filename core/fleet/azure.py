"""Azure fleets: VMs and Arc servers from Resource Graph, run through the Compute and Arc
backends over one session.

Used for ``--fleet azure`` (a real tenant, as configured) and ``--fleet sandbox`` (the
emulator, on loopback, :mod:`core.fleet.sandbox`): the same clients and backends either way.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

from core.azure.arm import ArmClient
from core.azure.auth import STORAGE_SCOPE, IdentityTokens, StaticToken, TokenSource
from core.azure.blob import AppendBlobClient, Bearer
from core.azure.budget import ArmBudget
from core.azure.delegated_output import DelegatedOutput
from core.azure.http import pooled_client
from core.azure.session import AzureSession, OutputContainer, Pacing
from core.azure.settings import SettingsError, load_azure_settings, sandbox_token
from core.backends.arc import ArcBackend
from core.backends.compute import ComputeBackend
from core.fleet.opened_backend import OpenedBackend, SourceReach, only_one
from core.fleet.options import FleetOptions
from core.fleet.source import FleetError, FleetSource
from core.inventory.azure_graph import query_machines
from core.model import Machine, MachineKind


def azure_source(spec: str) -> FleetSource:
    """``azure``: needs an ``[azure]`` table in config.toml and a credential (``az login``)."""
    try:
        settings = load_azure_settings()
    except SettingsError as exc:
        raise FleetError(f"fleet {spec!r}: {exc}") from None
    if not settings.configured:
        raise FleetError(
            f"fleet {spec!r}: Azure is not configured; add an [azure] table to config.toml "
            "(see core/azure/config.example.toml) or use --fleet sandbox"
        )
    credential: TokenSource
    if settings.credential == "sandbox":
        try:
            credential = StaticToken(sandbox_token(os.environ))
        except SettingsError as exc:
            raise FleetError(f"fleet {spec!r}: {exc}") from None
    else:
        credential = IdentityTokens()
    arm = ArmClient(settings.arm_endpoint, credential, api_versions=settings.api_versions,
                    budget=ArmBudget(settings.throttle))
    blob_http = pooled_client()
    output = None
    blobs = None
    if settings.output_container:
        identity = None
        bearer: Bearer | None = None
        delegated = None

        async def storage_token() -> str:
            return await credential.token(STORAGE_SCOPE)

        if settings.output_identity:
            identity = "" if settings.output_identity == "system" else settings.output_identity
            bearer = storage_token
        if settings.delegates:
            # The user's own token reads the blobs and mints each run's key.
            bearer = storage_token
            delegated = DelegatedOutput(blob_http, settings.output_container, storage_token)
        output = OutputContainer(settings.output_container, identity, delegated)
        blobs = AppendBlobClient(blob_http, bearer)
    session = AzureSession(
        arm=arm,
        blobs=blobs,
        output=output,
        pacing=Pacing(poll_interval=settings.poll_interval),
        delete_finished=settings.cleanup == "delete",
    )

    async def close_blobs() -> None:
        await blob_http.aclose()

    return azure_fleet_source(spec, session, settings.subscriptions, on_close=close_blobs)


def azure_fleet_source(
    spec: str,
    session: AzureSession,
    subscriptions: Sequence[str],
    *,
    on_close: Callable[[], Awaitable[None]] | None = None,
) -> FleetSource:
    """A fleet source over ``session``: VMs and Arc servers of ``subscriptions``.

    Args:
        spec: The ``--fleet`` value, for messages.
        session: The ARM client, blob access and settings; the source closes it.
        subscriptions: Where to look; empty means every subscription the credential sees.
        on_close: Run after the session is closed (the sandbox stops its server there).
    """

    async def load() -> list[Machine]:
        return await query_machines(session.arm, list(subscriptions))

    async def aclose() -> None:
        try:
            await session.aclose()
        finally:
            if on_close is not None:
                await on_close()

    return FleetSource(spec, load, reach={MachineKind.VM: session, MachineKind.ARC: session},
                       aclose=aclose)


def open_compute_backend(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    """Azure VMs, through the session of the one source that lists them."""
    return OpenedBackend(ComputeBackend(only_one(MachineKind.VM, reaches, AzureSession)))


def open_arc_backend(reaches: Sequence[SourceReach], options: FleetOptions) -> OpenedBackend:
    """Arc-enabled servers, through the session of the one source that lists them."""
    return OpenedBackend(ArcBackend(only_one(MachineKind.ARC, reaches, AzureSession)))
