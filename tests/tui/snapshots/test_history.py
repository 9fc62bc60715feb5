"""Snapshot of the history screen on a fixture journal: three past runs at fixed times."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import DataTable

from core.fanout import plan_run
from core.journal_store import Journal
from core.library import SavedCommand
from core.model import Command, CommandId, RunState
from tests.tui.snapshots.harness import (
    DB1,
    NOW,
    WEB1,
    WEB2,
    WIN1,
    ScreenApp,
    SnapCompare,
    steady_cursors,
    until,
)
from tui.screens.history import HistoryScreen

SIZE = (150, 16)
DEAD_PID = 2**22 + 1
"""Above Linux's largest pid: the run's owner is gone, so the journal calls it interrupted."""


def fixture_journal(path: Path) -> Journal:
    """A finished run with a failure, a clean one after it, and one whose owner died."""
    journal = Journal(path)
    uptime = Command(CommandId.SHELL, "uptime\n")
    restart = Command(CommandId.SHELL, "\n# restart it\nsystemctl restart nginx\n")
    windows = Command(CommandId.POWERSHELL, "Get-Service -Name W3SVC | Restart-Service")
    runs = [
        ([(WEB1, restart, RunState.SUCCEEDED), (WEB2, restart, RunState.FAILED),
          (DB1, restart, RunState.SKIPPED), (WIN1, windows, RunState.SUCCEEDED)],
         "tag:role=web,app"),
        ([(WEB1, uptime, RunState.SUCCEEDED), (WEB2, uptime, RunState.SUCCEEDED)], ""),
        ([(WEB1, uptime, RunState.RUNNING)], "name:web-01"),
    ]
    for index, (machines, target) in enumerate(runs):
        created = NOW - timedelta(hours=3 - index, minutes=17 * index)
        run = plan_run([(m, command) for m, command, _ in machines], fleet="sandbox",
                       target=target, run_id=f"{int(created.timestamp()):08x}{index:06x}")
        run.created = created
        for (_, _, state), mr in zip(machines, run.machines.values(), strict=True):
            mr.state = state
            mr.started = created + timedelta(seconds=2)
            if state.terminal:
                mr.ended = created + timedelta(seconds=9)
                mr.exit_code = 0 if state is RunState.SUCCEEDED else 3
        if all(mr.state.terminal for mr in run.machines.values()):
            run.ended = created + timedelta(seconds=9)
            journal.finish_run(run)
        else:
            run.pid = DEAD_PID
            journal.record_run(run)
    return journal


class TestHistory:
    def test_history_lists_past_runs_newest_first(self, snap_compare: SnapCompare,
                                                  tmp_path: Path) -> None:
        """Start times in local time (UTC here), status, state counts, the command's line."""
        journal = fixture_journal(tmp_path / "journal.sqlite")

        async def run_before(pilot: Pilot[None]) -> None:
            await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen),
                        "the history screen")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: HistoryScreen(journal)), terminal_size=SIZE,
                            run_before=run_before)

    def test_history_search_by_saved_command_at_80x24(self, snap_compare: SnapCompare,
                                                      tmp_path: Path) -> None:
        """/ then a saved command's name: the matching run, the match highlighted, the count."""
        journal = fixture_journal(tmp_path / "journal.sqlite")
        record_saved_run(journal)

        async def run_before(pilot: Pilot[None]) -> None:
            await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen),
                        "the history screen")
            await pilot.press("slash", *"disk", "enter")
            await until(pilot, lambda: len(pilot.app.screen.query_one(DataTable).rows) == 1,
                        "the search to keep one run")
            await steady_cursors(pilot)

        assert snap_compare(ScreenApp(lambda: HistoryScreen(journal)), terminal_size=(80, 24),
                            run_before=run_before)


def record_saved_run(journal: Journal) -> None:
    """A run of the saved command disk-usage, an hour before the snapshot."""
    disk = SavedCommand("disk-usage", scripts={CommandId.SHELL: "df -h /\n"})
    run = plan_run([(WEB1, disk.command_for(CommandId.SHELL, {}))], fleet="sandbox",
                   run_id=f"{int((NOW - timedelta(hours=1)).timestamp()):08x}{9:06x}")
    run.created = NOW - timedelta(hours=1)
    (mr,) = run.machines.values()
    mr.state, mr.exit_code = RunState.SUCCEEDED, 0
    mr.started, mr.ended = run.created, run.created + timedelta(seconds=2)
    run.ended = mr.ended
    journal.finish_run(run)


class TestHistoryNarrow:
    def test_history_with_a_chained_run_at_80x24(self, snap_compare: SnapCompare,
                                                 tmp_path: Path) -> None:
        """Started, status, command, states and "from" (the parent's start time and group)
        all on an 80-column screen, each cut with an ellipsis where it does not fit."""
        journal = fixture_journal(tmp_path / "journal.sqlite")
        parent = journal.list_runs(limit=10)[-1]  # the oldest: the one with a failure
        rerun = plan_run([(WEB2, Command(CommandId.SHELL, "systemctl restart nginx\n"))],
                         fleet="sandbox", parent_run_id=parent.run_id,
                         source_group="exit 3 · Failed 1 · web-02",
                         run_id=f"{int((NOW - timedelta(minutes=5)).timestamp()):08x}{7:06x}")
        rerun.created = NOW - timedelta(minutes=5)
        (mr,) = rerun.machines.values()
        mr.state, mr.exit_code = RunState.SUCCEEDED, 0
        mr.started, mr.ended = rerun.created, rerun.created + timedelta(seconds=3)
        rerun.ended = mr.ended
        journal.finish_run(rerun)

        async def run_before(pilot: Pilot[None]) -> None:
            await until(pilot, lambda: isinstance(pilot.app.screen, HistoryScreen),
                        "the history screen")
            await until(pilot, lambda: len(pilot.app.screen.query_one(DataTable).rows) == 4,
                        "the four runs")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: HistoryScreen(journal)), terminal_size=(80, 24),
                            run_before=run_before)
