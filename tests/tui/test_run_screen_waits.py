"""The run screen tells machines waiting on Azure's budget apart from Pending and Running:
Queued and Throttled in the summary's counts and as each machine's row, gone once they run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from textual.widgets import Static

from core.events import Finished, MachineEvent, OutputAppended, StateChanged, WaitChanged
from core.model import Command, Machine, RunState, Stream, Waiting
from core.runner import RunSession
from tests.fakes import machines
from tests.tui.test_run_screen import COMMAND, SIZE, RunApp, cell, until
from tui.screens.run import RunScreen
from tui.widgets.run.run_summary import RunSummary

WAITS = {"m000": None, "m001": Waiting.THROTTLED, "m002": Waiting.QUEUED,
         "m003": Waiting.QUEUED}
"""What each machine's start request meets: m000 goes at once."""


class BudgetBackend:
    """Managed-backend-like: a machine's start request waits as :data:`WAITS` says until the
    test releases it; m000 runs until released too."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def run(self, machine: Machine, command: Command, *, run_id: str
                  ) -> AsyncIterator[MachineEvent]:
        waiting = WAITS[machine.id]
        if waiting is not None:
            yield WaitChanged(machine.id, waiting)
            await self.release.wait()
        yield StateChanged(machine.id, RunState.RUNNING)
        await self.release.wait()
        yield OutputAppended(machine.id, Stream.STDOUT, 0, b"ok\n")
        yield Finished(machine.id, RunState.SUCCEEDED, exit_code=0)

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


async def test_queued_and_throttled_machines_show_in_the_counts_and_their_rows(
        tmp_path: Path) -> None:
    backend = BudgetBackend()
    session = RunSession.plan([(m, COMMAND) for m in machines(len(WAITS))],
                              lambda _m: backend, runs_root=tmp_path)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        summary = screen.query_one(RunSummary)
        expected = {Waiting.QUEUED: 2, Waiting.THROTTLED: 1, RunState.RUNNING: 1}
        await until(pilot, lambda: summary.counts == expected, "the waits counted")
        shown = str(summary.query_one("#counts", Static).render())
        assert shown == "⋯ Queued 2 · ‖ Throttled 1 · ▶ Running 1"
        await until(pilot, lambda: cell(screen, "m001", "state") == "‖ Throttled",
                    "m001's row throttled")
        assert cell(screen, "m002", "state") == "⋯ Queued"
        assert cell(screen, "m003", "state") == "⋯ Queued"
        assert cell(screen, "m000", "state") == "▶ Running"

        backend.release.set()
        await until(pilot, lambda: summary.counts == {RunState.SUCCEEDED: 4}, "all ran")
        await until(pilot, lambda: cell(screen, "m002", "state") == "✓ Succeeded",
                    "m002's row succeeded")
        assert "Queued" not in str(summary.query_one("#counts", Static).render())


async def test_at_80_columns_every_count_stays_whole(tmp_path: Path) -> None:
    """Named counts crowded out by the progress bar and clock lost the counts after the
    first; where they do not fit, glyphs and counts only (as the CLI's progress)."""
    backend = BudgetBackend()
    session = RunSession.plan([(m, COMMAND) for m in machines(len(WAITS))],
                              lambda _m: backend, runs_root=tmp_path)
    app = RunApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        counts = screen.query_one(RunSummary).query_one("#counts", Static)
        await until(pilot, lambda: str(counts.render()) == "⋯2 ‖1 ▶1", "the short counts")
        assert cell(screen, "m001", "state") == "‖ Throttled"
        backend.release.set()
        await until(pilot, lambda: str(counts.render()) == "✓ Succeeded 4", "the run's end")
