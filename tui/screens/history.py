"""Past runs from the journal; any one opens, read-only, on a run screen.

``/`` searches them (the saved command's name, scripts, target, state, machines: see
:mod:`core.run_search`, which does the finding), ``t``/``w``/``a`` bound them to today, the
last 7 days or any date, and ``since:WHEN until:WHEN`` in the search box to any range;
``o``/``O`` sort (the table, its columns at each width and its sort:
:mod:`tui.widgets.history_table`).
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from core import config
from core.journal_store import Journal, JournalError, RunRecord
from core.model import utc_now
from core.run_search import RunFilter, RunFilterError, last_days, parse_search
from core.runner import RunSession
from tui import keymap
from tui.screens.run import RunScreen
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.history_table import HistoryTable

LIMIT = 500


class HistoryScreen(Screen[None]):
    """The newest runs first; enter opens one."""

    BINDINGS = keymap.HISTORY
    DEFAULT_CSS = """
    HistoryScreen DataTable { height: 1fr; }
    HistoryScreen #history-status { height: 1; padding: 0 1; color: $text-muted; }
    HistoryScreen #history-search { display: none; }
    HistoryScreen #history-search.-open { display: block; }
    """

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__()
        self._journal = journal or Journal(config.journal_path())
        self._runs: list[RunRecord] = []
        self._search = RunFilter()
        """What the search box holds, parsed (its text and any since:/until:)."""
        self._dates = RunFilter()
        """The date preset (t, w, a); since:/until: in the search box win over it."""
        self._dates_label = ""

    def compose(self) -> ComposeResult:
        yield Header()
        yield Input(placeholder="search: command name, script, target, state, machine; "
                    "since:7d until:2026-12-01 (enter keeps it, esc clears)",
                    id="history-search")
        yield HistoryTable(id="runs")
        yield Static(id="history-status")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.sub_title = "history"
        self.action_reload()
        self.query_one("#runs", HistoryTable).focus()

    @property
    def run_filter(self) -> RunFilter:
        """The runs shown: the search box's words and dates, else the date preset's."""
        return RunFilter(text=self._search.text,
                         since=self._search.since or self._dates.since,
                         until=self._search.until or self._dates.until)

    def action_reload(self) -> None:
        where = self.run_filter
        self._runs = self._journal.list_runs(limit=LIMIT, where=where)
        self.query_one("#runs", HistoryTable).show(self._runs, where.text.strip())
        if where.is_empty:
            shown = f"{len(self._runs)} run(s)"
        else:
            total = self._journal.count_runs()
            matching = self._journal.count_runs(where)
            shown = f"{matching} of {total} run(s) match {where.describe()}"
        if len(self._runs) == LIMIT:
            shown += f" (the newest {LIMIT}; `fleetrun history --limit N` lists more)"
        keys = " · enter opens one · / searches" if where.is_empty else " · esc clears"
        self.query_one("#history-status", Static).update(Text(shown + keys))

    # -- sorting (as the run screen's table: o, O, a click on a header) --------------------

    def action_cycle_sort(self) -> None:
        self.query_one("#runs", HistoryTable).action_cycle_sort()

    def action_reverse_sort(self) -> None:
        self.query_one("#runs", HistoryTable).action_reverse_sort()

    # -- search and dates ------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "search":
            # The binding has priority; in the box itself "/" is a character of the search.
            return self.focused is not self.query_one("#history-search", Input)
        return True

    def action_search(self) -> None:
        box = self.query_one("#history-search", Input)
        box.add_class("-open")
        # Shown at once (an inline style, not the class's CSS on the next refresh), so the
        # focus lands on it and keys typed right after / reach it, not the table.
        box.display = True
        self.set_focus(box)  # now: focus() would wait behind keys already queued

    @on(Input.Changed, "#history-search")
    def _search_changed(self, event: Input.Changed) -> None:
        try:
            self._search = parse_search(event.value, utc_now())
        except RunFilterError as exc:  # still being typed: keep the last good list
            self.query_one("#history-status", Static).update(Text(str(exc), style="red"))
            return
        self.action_reload()

    @on(Input.Submitted, "#history-search")
    def _search_kept(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            box = self.query_one("#history-search", Input)
            box.remove_class("-open")
            box.display = False
        self.query_one("#runs", DataTable).focus()

    def action_today(self) -> None:
        self._dates = last_days(1, utc_now())
        self.action_reload()

    def action_last_week(self) -> None:
        self._dates = last_days(7, utc_now())
        self.action_reload()

    def action_all_dates(self) -> None:
        self._dates = RunFilter()
        self.action_reload()

    @on(DataTable.RowSelected, "#runs")
    def _open(self, event: DataTable.RowSelected) -> None:
        run_id = str(event.row_key.value)
        try:
            record = self._journal.get_run(run_id)
        except JournalError as exc:
            self.notify(str(exc), severity="error")
            return
        self.app.push_screen(RunScreen(RunSession.recorded(record), record.fleet or "history"))

    def action_back(self) -> None:
        """esc clears a search (then the dates) before it leaves."""
        box = self.query_one("#history-search", Input)
        if box.value or box.has_class("-open"):
            box.value = ""
            box.remove_class("-open")
            box.display = False
            self._search = RunFilter()
            self.action_reload()
            self.query_one("#runs", DataTable).focus()
        elif not self._dates.is_empty:
            self.action_all_dates()
        else:
            self.app.pop_screen()

