"""A run canceled on the run screen (X) is listed as canceled in history, not finished."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from core.fanout import FanoutOptions
from core.journal_store import Journal
from core.runner import RunSession
from core.validate import Limit
from tests.fakes import FakeBackend, Scenario, machines
from tests.tui.test_run_screen import COMMAND, SIZE, RunApp, until
from tui.screens.history import HistoryScreen
from tui.widgets.dialogs.confirm import Confirm


async def test_a_canceled_run_shows_canceled_in_history(tmp_path: Path) -> None:
    backend = FakeBackend({"m000": Scenario(hang=True), "m001": Scenario(hang=True)})
    journal = Journal(tmp_path / "journal.sqlite")
    session = RunSession.plan([(m, COMMAND) for m in machines(3)], lambda _m: backend,
                              options=FanoutOptions(concurrency=Limit(2)), journal=journal,
                              runs_root=tmp_path)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: len(backend.started) == 2, "two machines running")
        await pilot.press("X")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the question")
        await pilot.press("y")
        await until(pilot, lambda: session.run.finished, "the run ended")
        await until(pilot, lambda: journal.get_run(session.run.run_id).ended is not None,
                    "the journal recording the end")
        assert journal.get_run(session.run.run_id).status == "finished"  # as stored
        await app.push_screen(HistoryScreen(journal))
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        table = app.screen.query_one("#runs", DataTable)
        await until(pilot, lambda: table.row_count == 1, "the run listed")
        assert str(table.get_cell(session.run.run_id, "status")) == "canceled"
