"""The history screen finds runs: / searches (saved command, script, machine), t/w/a bound the
dates, esc clears the search before it leaves."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from core.fanout import plan_run
from core.journal_store import Journal
from core.model import Command, CommandId, RunState, utc_now
from tests.tui.snapshots.harness import WEB1, WEB2, ScreenApp, until
from tests.tui.snapshots.test_history import record_saved_run
from tui.screens.history import HistoryScreen


def journal_with_runs(path: Path) -> Journal:
    """A saved disk-usage run an hour ago (at the snapshots' NOW, long past), and two ad-hoc
    runs now: one today on web-02, and one on web-01."""
    journal = Journal(path)
    record_saved_run(journal)
    for index, (machine, script) in enumerate([(WEB2, "systemctl restart nginx\n"),
                                               (WEB1, "uptime\n")]):
        run = plan_run([(machine, Command(CommandId.SHELL, script))], fleet="sandbox",
                       run_id=f"r-today-{index}")
        run.created = utc_now() - timedelta(minutes=index)
        (mr,) = run.machines.values()
        mr.state, mr.exit_code = RunState.FAILED, 1
        run.ended = run.created + timedelta(seconds=1)
        journal.finish_run(run)
    return journal


def shown(screen: HistoryScreen) -> list[str]:
    table = screen.query_one("#runs", DataTable)
    return [str(key.value) for key in table.rows]


def status(screen: HistoryScreen) -> str:
    return str(screen.query_one("#history-status", Static).render())


async def test_search_and_dates_narrow_the_runs_and_esc_clears(tmp_path: Path) -> None:
    journal = journal_with_runs(tmp_path / "journal.sqlite3")
    app = ScreenApp(lambda: HistoryScreen(journal))
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        assert len(shown(screen)) == 3

        await pilot.press("slash", *"DISK-U")
        await until(pilot, lambda: len(shown(screen)) == 1, "the search by saved command")
        assert "disk-usage #" in str(screen.query_one(DataTable).get_row_at(0)[3])
        assert "1 of 3 run(s) match 'DISK-U'" in status(screen)

        box = screen.query_one("#history-search", Input)
        box.value = "web-02"  # a machine's name
        await until(pilot, lambda: shown(screen) == ["r-today-0"], "the search by machine")
        box.value = "nginx since:zzz"  # a bad date keeps the last good list, says why
        await until(pilot, lambda: "since: 'zzz' is not a date" in status(screen), "the error")
        assert shown(screen) == ["r-today-0"]

        await pilot.press("escape")  # clears the search, stays
        await until(pilot, lambda: len(shown(screen)) == 3, "the search cleared")
        assert app.screen is screen and not box.has_class("-open")

        await pilot.press("t")  # today: the saved run was long ago
        await until(pilot, lambda: sorted(shown(screen)) == ["r-today-0", "r-today-1"],
                    "today's runs")
        assert "2 of 3 run(s) match since" in status(screen)
        await pilot.press("w")
        await until(pilot, lambda: len(shown(screen)) == 2, "the last 7 days")
        await pilot.press("a")
        await until(pilot, lambda: len(shown(screen)) == 3, "every date")
        await pilot.press("t", "escape")  # esc clears the dates too, then leaves
        await until(pilot, lambda: len(shown(screen)) == 3, "the dates cleared")
        assert app.screen is screen
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is not screen, "history closed")
