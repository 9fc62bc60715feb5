"""Azure Arc-enabled servers: ``Microsoft.HybridCompute/machines/{m}/runCommands``."""

from __future__ import annotations

from core.backends.managed import ManagedRunCommands


class ArcBackend(ManagedRunCommands):
    """Runs commands on Arc-enabled servers through HybridCompute's run commands.

    Arc's GET carries the instance view without ``$expand`` (and whether it accepts the
    parameter is unconfirmed), so none is sent.
    """

    expand_instance_view = False
