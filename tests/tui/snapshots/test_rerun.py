"""Snapshot of the rerun dialog (R) over an ended run: a checkbox per end state, counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from tests.tui.snapshots.harness import ScreenApp, SnapCompare, until
from tests.tui.snapshots.test_run import SIZE, ended_run, ended_run_screen
from tui.screens.run import RunScreen
from tui.widgets.dialogs.rerun import RerunDialog


class TestRerun:
    def test_rerun_dialog(self, snap_compare: SnapCompare, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
        """Failed (1) and timed out (1) ticked, canceled and not started (0) greyed: 2."""
        monkeypatch.chdir(tmp_path)
        session = ended_run(Path("runs"))

        async def run_before(pilot: Pilot[None]) -> None:
            await ended_run_screen(pilot, session)
            await pilot.press("R")
            await until(pilot, lambda: isinstance(pilot.app.screen, RerunDialog),
                        "the rerun dialog")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: RunScreen(session, "sandbox")),
                            terminal_size=SIZE, run_before=run_before)
