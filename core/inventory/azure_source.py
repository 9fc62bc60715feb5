"""An Azure fleet: machines from Resource Graph, runs through the Compute and Arc backends.

Used for ``--fleet azure`` (a real tenant, as configured) and ``--fleet sandbox`` (the
emulator, on loopback): the same clients and backends either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from core.azure.session import AzureSession
from core.backends.arc import ArcBackend
from core.backends.compute import ComputeBackend
from core.inventory.azure_graph import query_machines
from core.inventory.sources import FleetSource
from core.model import Machine, MachineKind


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
        session: The ARM client, blob access and settings.
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

    return FleetSource(
        spec,
        load,
        backends={MachineKind.VM: ComputeBackend(session), MachineKind.ARC: ArcBackend(session)},
        aclose=aclose,
    )
