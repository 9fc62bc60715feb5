"""Azure Arc-enabled servers: ``Microsoft.HybridCompute/machines/{m}/runCommands``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from core.backends.managed import ManagedRunCommands
from core.events import Finished, MachineEvent
from core.model import Command, Machine, RunApi, RunState


class ArcBackend(ManagedRunCommands):
    """Runs commands on Arc-enabled servers through HybridCompute's run commands.

    Arc's GET carries the instance view without ``$expand`` (and whether it accepts the
    parameter is unconfirmed), so none is sent.
    """

    expand_instance_view = False

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncGenerator[MachineEvent, None]:
        """Arc has no action Run Command API: ``--api action`` and built-in ids skip."""
        if command.builtin or command.api is RunApi.ACTION:
            what = f"the built-in {command.builtin}" if command.builtin else "--api action"
            yield Finished(machine.id, RunState.SKIPPED, error=f"skipped: Arc machines have no "
                           f"action Run Command API ({what})")
            return
        async with contextlib.aclosing(super().run(machine, command, run_id=run_id)) as events:
            async for event in events:
                yield event
