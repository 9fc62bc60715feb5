"""Past runs from the journal; any one opens, read-only, on a run screen."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from core import config
from core.journal_store import Journal, JournalError, RunRecord
from core.runner import RunSession
from tui import keymap
from tui.screens.run import RunScreen
from tui.widgets.run.run_table import STATE_STYLE

LIMIT = 500
STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow",
                "canceled": "yellow"}
STOPPED_AS = (("run canceled", "canceled"), ("run interrupted", "interrupted"))
"""A run that ended because it was stopped (X, or ctrl+c on the CLI) is written to the
journal as finished with the fan-out's stop reason (cancel_all's); history shows it by that
reason, not as finished. A write problem may follow the reason after a ';'."""


def shown_status(record: RunRecord) -> str:
    """The journal's status, or canceled / interrupted for a run that was stopped."""
    if record.status == "finished":
        for reason, shown in STOPPED_AS:
            if record.stop_reason.startswith(reason):
                return shown
    return record.status


def summary_text(record: RunRecord) -> Text:
    text = Text()
    for state, count in sorted(record.summary.items()):
        glyph, style = next(((g, st) for s, (g, st) in STATE_STYLE.items() if s.value == state),
                            ("·", ""))
        text.append(f"{glyph}{count} ", style=style)
    return text


def first_line(record: RunRecord) -> str:
    script = str(record.commands[0].get("script", "")) if record.commands else ""
    line = next((ln.strip() for ln in script.splitlines() if ln.strip()), "")
    return line[:60] + ("…" if len(line) > 60 else "")


class HistoryScreen(Screen[None]):
    """The newest runs first; enter opens one."""

    BINDINGS = keymap.HISTORY
    DEFAULT_CSS = """
    HistoryScreen DataTable { height: 1fr; }
    HistoryScreen #history-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__()
        self._journal = journal or Journal(config.journal_path())
        self._runs: list[RunRecord] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(cursor_type="row", zebra_stripes=True, id="runs")
        yield Static(id="history-status")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "history"
        table = self.query_one("#runs", DataTable)
        for label in ("run", "started", "status", "machines", "states", "fleet", "target",
                      "command"):
            table.add_column(label, key=label)
        self.action_reload()
        table.focus()

    def action_reload(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear()
        self._runs = self._journal.list_runs(limit=LIMIT)
        for record in self._runs:
            table.add_row(
                record.run_id, record.created.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
                Text(shown_status(record), style=STATUS_STYLE.get(shown_status(record), "")),
                str(record.machine_count), summary_text(record), record.fleet,
                record.target, first_line(record), key=record.run_id)
        shown = f"{len(self._runs)} run(s)"
        if len(self._runs) == LIMIT:
            shown += f" (the newest {LIMIT}; `fleetrun history --limit N` lists more)"
        self.query_one("#history-status", Static).update(shown + " · enter opens one")

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
        self.app.pop_screen()
