"""The history screen's table of past runs: its cells, its columns at each width, its sort.

Sorted as the run screen's machine table is: ``o`` goes through the columns people sort
runs by (started, status, machines, states: the failures, command), then back to the
journal's order (newest first); ``O`` reverses; a click on a header sorts by it. The sorted
column's header carries ``▲``/``▼``. Below :data:`NARROW_WIDTH` columns the run id,
machine count, fleet and target are left out and the rest narrowed, so that every column
left is on an 80-column screen; there a chained run's "from" gives its parent's start time
(the parent's id, the wide table's first column, is not shown).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from core.journal_store import RunRecord
from core.model import RunState
from tui.widgets.run.run_table import STATE_STYLE
from tui.widgets.vim_table import VimTable

STATUS_STYLE = {"finished": "green", "running": "cyan", "interrupted": "yellow",
                "canceled": "yellow"}
STOPPED_AS = (("run canceled", "canceled"), ("run interrupted", "interrupted"))
"""A run that ended because it was stopped (X, or ctrl+c on the CLI) is written to the
journal as finished with the fan-out's stop reason (cancel_all's); history shows it by that
reason, not as finished. A write problem may follow the reason after a ';'."""

WIDE_COLUMNS = ("run", "started", "status", "command", "machines", "states", "fleet",
                "target", "from")
"""The command early: it is what people look for ("what did we run?")."""
NARROW_COLUMNS = ("started", "status", "command", "states", "from")
NARROW_WIDTH = 120
"""Below this many columns the table has :data:`NARROW_COLUMNS`, narrowed to
:data:`NARROW_CAPS` characters."""
NARROW_CAPS = {"command": 18, "states": 12, "from": 16}

CYCLE: tuple[str, ...] = ("started", "status", "machines", "states", "command")
"""The columns ``o`` goes through, in this order, then back to the journal's order."""

FAILED_STATES = frozenset(s.value for s in RunState if s.counts_as_failure)


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


def origin_text(record: RunRecord, parent_started: str = "") -> Text:
    """Where a run came from: ``↳ <parent run>`` (or its start time, ``parent_started``)
    and the parent's group(s) it was run on."""
    if not record.parent_run_id:
        return Text("")
    text = Text(f"↳ {parent_started or record.parent_run_id}", style="cyan")
    if record.source_group:
        group = record.source_group
        text.append(" · " + (group[:48] + "…" if len(group) > 48 else group), style="dim")
    return text


def first_line(record: RunRecord) -> str:
    if record.saved_command:
        return record.saved_label()
    script = str(record.commands[0].get("script", "")) if record.commands else ""
    line = next((ln.strip() for ln in script.splitlines() if ln.strip()), "")
    return line[:60] + ("…" if len(line) > 60 else "")


def failures(record: RunRecord) -> int:
    """Machines that failed or timed out (what the states column is sorted by)."""
    return sum(count for state, count in record.summary.items() if state in FAILED_STATES)


SORT_VALUES: dict[str, Callable[[RunRecord], float | str]] = {
    "run": lambda r: r.run_id,
    "started": lambda r: r.created.timestamp(),
    "status": shown_status,
    "command": lambda r: first_line(r).casefold(),
    "machines": lambda r: r.machine_count,
    "states": failures,
    "fleet": lambda r: r.fleet.casefold(),
    "target": lambda r: r.target.casefold(),
    "from": lambda r: r.parent_run_id,
}


@dataclass(frozen=True)
class RunSort:
    """A column to sort the runs by (None: the journal's order) and which way."""

    column: str | None = None
    descending: bool = False

    def next(self) -> RunSort:
        if self.column not in CYCLE:
            return RunSort(CYCLE[0])
        position = CYCLE.index(self.column) + 1
        return RunSort(CYCLE[position] if position < len(CYCLE) else None)

    def reversed(self) -> RunSort:
        return RunSort(self.column, not self.descending)

    def by(self, column: str) -> RunSort:
        """Sort by ``column``; the column already sorted by: the other way round."""
        return self.reversed() if column == self.column else RunSort(column)

    def arrange(self, records: list[RunRecord]) -> list[RunRecord]:
        """``records`` in this order; ties keep the journal's order (stable either way)."""
        if self.column is None:
            return list(records)
        value = SORT_VALUES[self.column]
        if not self.descending:
            return sorted(records, key=value)
        # Ties in the journal's order whichever way: sort the reversed list, then reverse.
        return sorted(records[::-1], key=value)[::-1]

    def label(self) -> str:
        if self.column is None:
            return "newest first"
        return f"{self.column} {'▼' if self.descending else '▲'}"


class HistoryTable(VimTable[Text | str]):
    """A row per run, keyed by run id; :meth:`show` draws them in :attr:`order`."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.order = RunSort()
        self.records: list[RunRecord] = []
        self._needle = ""
        self._drawn_narrow: bool | None = None

    @property
    def narrow(self) -> bool:
        return self.app.size.width < NARROW_WIDTH

    def show(self, records: list[RunRecord], needle: str = "") -> None:
        """Draw ``records`` (newest first), ``needle`` highlighted; the cursor stays on
        its run."""
        self.records, self._needle = records, needle
        self._draw()

    def sort_by(self, order: RunSort) -> None:
        self.order = order
        self._draw()

    def on_resize(self) -> None:
        if self._drawn_narrow is not None and self._drawn_narrow != self.narrow:
            self._draw()

    def _draw(self) -> None:
        self._drawn_narrow = self.narrow
        current = self._current_run_id()
        self.clear(columns=True)
        columns = NARROW_COLUMNS if self.narrow else WIDE_COLUMNS
        for key in columns:
            label = key + (" ▼" if self.order.descending else " ▲") \
                if key == self.order.column else key
            self.add_column(label, key=key, width=NARROW_CAPS.get(key) if self.narrow else None)
        started = {r.run_id: self._started(r) for r in self.records}
        rows = self.order.arrange(self.records)
        for record in rows:
            cells = self._cells(record, started.get(record.parent_run_id, ""))
            self.add_row(*(self._fitted(key, cells[key]) for key in columns), key=record.run_id)
        ids = [r.run_id for r in rows]
        if current in ids:
            self.move_cursor(row=ids.index(current), scroll=True)

    def _fitted(self, key: str, cell: Text | str) -> Text | str:
        """``cell``, ended by ``…`` where a narrow column cuts it (never mid-word unseen)."""
        cap = NARROW_CAPS.get(key) if self.narrow else None
        if cap is None or len(cell) <= cap:
            return cell
        text = cell.copy() if isinstance(cell, Text) else Text(cell)
        text.truncate(cap, overflow="ellipsis")
        return text

    def _current_run_id(self) -> str | None:
        if not self.row_count or not 0 <= self.cursor_row < self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return str(key) if key is not None else None

    def _started(self, record: RunRecord) -> str:
        local = record.created.astimezone()
        return local.strftime("%m-%d %H:%M" if self.narrow else "%Y-%m-%d %H:%M:%S")

    def _cells(self, record: RunRecord, parent_started: str) -> dict[str, Text | str]:
        status = shown_status(record)
        needle = self._needle
        return {
            "run": record.run_id,
            "started": self._started(record),
            "status": Text(status, style=STATUS_STYLE.get(status, "")),
            "command": _marked(first_line(record), needle),
            "machines": str(record.machine_count),
            "states": summary_text(record),
            "fleet": _marked(record.fleet, needle),
            "target": _marked(record.target, needle),
            "from": origin_text(record, parent_started if self.narrow else ""),
        }

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.sort_by(self.order.by(str(event.column_key.value)))

    def action_cycle_sort(self) -> None:
        self.sort_by(self.order.next())
        self.notify(f"Sorted by {self.order.label()}", timeout=2)

    def action_reverse_sort(self) -> None:
        if self.order.column is not None:
            self.sort_by(self.order.reversed())


def _marked(text: str, needle: str) -> Text:
    """``text`` with every (any-case) occurrence of ``needle`` highlighted."""
    shown = Text(text)
    if needle:
        shown.highlight_words([needle], style="reverse", case_sensitive=False)
    return shown
