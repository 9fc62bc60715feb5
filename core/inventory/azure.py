"""The ``azure`` fleet source: the VMs and Arc servers of the configured subscriptions."""

from __future__ import annotations

import os

from core.azure.arm import ArmClient
from core.azure.auth import STORAGE_SCOPE, IdentityTokens, StaticToken, TokenSource
from core.azure.blob import AppendBlobClient
from core.azure.budget import ArmBudget
from core.azure.http import pooled_client
from core.azure.session import AzureSession, OutputContainer, Pacing
from core.azure.settings import SettingsError, load_azure_settings, sandbox_token
from core.inventory.azure_source import azure_fleet_source
from core.inventory.sources import FleetError, FleetSource


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
        bearer = None
        if settings.output_identity:
            identity = "" if settings.output_identity == "system" else settings.output_identity

            async def bearer() -> str:
                return await credential.token(STORAGE_SCOPE)

        output = OutputContainer(settings.output_container, identity)
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
