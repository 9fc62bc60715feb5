"""The run's machine table: one row per machine, state as glyph and colour, time and bytes.

A line-rendered widget rather than Textual's ``DataTable``: a DataTable caches its rendered
cells per table, so updating one cell renders every visible cell again, and a run of a
thousand machines changes some cell every tick. Here each row is rendered once into a strip
and kept until that row changes (or the cursor enters or leaves it).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.live_counts import LiveState, live_state
from core.model import MachineId, Run
from tui import keymap
from tui.widgets.run.cells import (  # re-exported: other views read cells from here
    COLUMNS,
    STATE_STYLE,
    duration_text,
    row_cells,
    size_text,
    state_text,
)
from tui.widgets.run.sort_order import SortOrder
from tui.widgets.style_per_pass import StylePerPass

__all__ = ["COLUMNS", "STATE_STYLE", "RunTable", "duration_text", "row_cells", "size_text",
           "state_text"]

Cell = Text | str

WIDTHS = {"state": 12, "elapsed": 8, "exit": 5, "out": 9, "err": 9}
"""Columns whose values change get room for their widest value up front."""
MACHINE_WIDTH = (7, 40)
"""The machine column fits the longest name, within these bounds."""
GAP = 2


class RunTable(StylePerPass, ScrollView, can_focus=True):
    """The machines of a run, keyed by machine id, in the run's order, with a row cursor.

    Only the rows in view are kept up to date, at most every :data:`REDRAW_SECONDS`; a row
    scrolled into view is brought up to date at once. Rows whose final state is drawn are
    not looked at again.
    """

    BINDINGS = keymap.TABLE
    COMPONENT_CLASSES = {"run-table--header", "run-table--cursor", "run-table--even-row"}
    DEFAULT_CSS = """
    RunTable {
        height: 1fr;
        background: $surface;
        color: $foreground;
        & > .run-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .run-table--even-row { background: $surface-lighten-1 50%; }
        & > .run-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .run-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    MARGIN_ROWS = 2
    """Rows beyond each edge of the view kept up to date too (scrolling by a line or two)."""

    REDRAW_SECONDS = 1.0
    """At most this often are elapsed times and byte counts redrawn (they change all the
    time; nobody reads them ten times a second, and elapsed times are whole seconds). A
    changed state is drawn at once. With every machine in view streaming, each redraw
    renders every row: at 0.5 s that was a fifth of the screen's frames' CPU."""

    cursor_row: reactive[int] = reactive(0, always_update=False)
    """Index of the highlighted row."""

    class RowHighlighted(Message):
        """The cursor moved to another machine.

        Attributes:
            table: The table whose cursor moved.
            machine_id: The machine now under the cursor.
            row: Its index.
        """

        def __init__(self, table: RunTable, machine_id: MachineId, row: int) -> None:
            self.table = table
            self.machine_id = machine_id
            self.row = row
            super().__init__()

        @property
        def control(self) -> RunTable:
            return self.table

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._order: list[MachineId] = []
        self._index: dict[MachineId, int] = {}
        self._cells: dict[MachineId, tuple[Cell, ...]] = {}
        self._states: dict[MachineId, LiveState] = {}
        self.row_order = SortOrder()
        """By which column the rows are sorted (by default, none: the run's order)."""
        self._settled: set[MachineId] = set()
        self._strips: dict[int, Strip] = {}
        self._widths: list[int] = []
        self._run: Run | None = None
        self._now: datetime | None = None
        self._last_redraw = -math.inf
        self._machine_width = MACHINE_WIDTH[0]
        self.cursor_moved: Callable[[], None] | None = None
        """Called as the cursor moves, before :class:`RowHighlighted` is posted: what shows
        the machine under the cursor is drawn in the same frame as the cursor (the message
        reaches the screen a loop turn later, often after a frame with the cursor alone)."""

    # -- data -----------------------------------------------------------------------------

    def load(self, run: Run, now: datetime | None = None) -> None:
        """Draw every machine of ``run`` (once, when the screen opens)."""
        self._run, self._now = run, now
        self._order = self.row_order.arrange(run.machines, now)
        self._index = {machine_id: i for i, machine_id in enumerate(self._order)}
        self._cells = {mid: row_cells(mr, now) for mid, mr in run.machines.items()}
        self._states = {mid: live_state(mr) for mid, mr in run.machines.items()}
        self._settled = {mid for mid, mr in run.machines.items() if mr.state.terminal}
        longest = max((len(mr.machine.name) for mr in run.machines.values()), default=0)
        self._machine_width = min(max(longest, MACHINE_WIDTH[0]), MACHINE_WIDTH[1])
        self._strips.clear()
        self._layout_columns()
        self.cursor_row = 0
        self.refresh()

    def refresh_from(self, run: Run, now: datetime | None = None, *, force: bool = False) -> int:
        """Redraw the rows in view that changed since they were drawn; returns how many cells.

        Within :data:`REDRAW_SECONDS` of the last full redraw (and unless ``force``), only
        rows whose state changed are redrawn.
        """
        self._run, self._now = run, now
        clock = time.monotonic()
        if force or clock - self._last_redraw >= self.REDRAW_SECONDS:
            self._last_redraw = clock
            if self.row_order.column is not None:
                self._arrange()  # the values sorted by change as the run goes
            return self._update_rows(self.rows_in_view())
        return self._update_rows(self.rows_in_view(), states_only=True)

    def rows_in_view(self) -> range:
        """Indexes of the rows on screen, with a margin."""
        top = max(0, int(self.scroll_y) - self.MARGIN_ROWS)
        height = self.scrollable_content_region.height + 2 * self.MARGIN_ROWS
        return range(top, min(len(self._order), top + height))

    def _update_rows(self, rows: range, *, states_only: bool = False) -> int:
        run = self._run
        if run is None:
            return 0
        changed = 0
        for index in rows:
            machine_id = self._order[index]
            if machine_id in self._settled:
                continue
            mr = run.machines[machine_id]
            state = live_state(mr)  # a wait for Azure's budget shows like a state
            if states_only and self._states[machine_id] is state:
                continue
            self._states[machine_id] = state
            cells = row_cells(mr, self._now)
            before = self._cells[machine_id]
            if cells != before:
                changed += sum(1 for old, new in zip(before, cells, strict=True) if old != new)
                self._cells[machine_id] = cells
                self._invalidate(index)
            if mr.state.terminal:
                self._settled.add(machine_id)
        return changed

    @property
    def row_count(self) -> int:
        return len(self._order)

    def current_machine_id(self) -> MachineId | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    def get_row_at(self, row: int) -> tuple[Cell, ...]:
        """The cells of row ``row``, as last drawn."""
        return self._cells[self._order[row]]

    def get_cell(self, machine_id: MachineId, column: str) -> Cell:
        """The cell of ``machine_id`` in ``column`` (a key of :data:`COLUMNS`), as last drawn."""
        keys = [key for _, key in COLUMNS]
        return self._cells[machine_id][keys.index(column)]

    def machine_ids(self) -> list[MachineId]:
        """The machines in the order shown."""
        return list(self._order)

    # -- sorting --------------------------------------------------------------------------

    def sort_by(self, order: SortOrder) -> None:
        """Show the rows in ``order``; the cursor stays on its machine."""
        self.row_order = order
        self._arrange()
        self.refresh_lines(0)  # the header shows the sort

    def _arrange(self) -> None:
        run = self._run
        if run is None:
            return
        order = self.row_order.arrange(run.machines, self._now)
        if order == self._order:
            return
        current = self.current_machine_id()
        self._order = order
        self._index = {machine_id: i for i, machine_id in enumerate(order)}
        self._strips.clear()
        # Rows that come into view were not kept up to date while out of it.
        self._update_rows(self.rows_in_view())
        if current is not None and self._index[current] != self.cursor_row:
            self.set_reactive(RunTable.cursor_row, self._index[current])
            self._scroll_to_cursor()
        self.refresh()

    def action_cycle_sort(self) -> None:
        self.sort_by(self.row_order.next())
        self.notify(f"Sorted by {self.row_order.label()}", timeout=2)

    def action_reverse_sort(self) -> None:
        if self.row_order.column is not None:
            self.sort_by(self.row_order.reversed())

    # -- cursor and scrolling -------------------------------------------------------------

    def move_cursor(self, *, row: int) -> None:
        """Put the cursor on ``row`` (clamped) and scroll it into view."""
        self.cursor_row = row

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self._order) - 1))

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._invalidate(old)
        self._invalidate(new)
        self._scroll_to_cursor()
        if self._order:
            if self.cursor_moved is not None:
                self.cursor_moved()
            self.post_message(self.RowHighlighted(self, self._order[new], new))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # the header takes one
        top = int(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self._update_rows(self.rows_in_view())

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_page_up(self) -> None:
        self.cursor_row -= self._page()

    def action_page_down(self) -> None:
        self.cursor_row += self._page()

    def action_first(self) -> None:
        self.cursor_row = 0

    def action_last(self) -> None:
        self.cursor_row = len(self._order) - 1

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.cursor_row = int(self.scroll_y) + event.y - 1
            return
        column = self.column_at(event.x + int(self.scroll_x))
        if column is not None:
            self.sort_by(self.row_order.by(column))

    def column_left(self, column: str) -> int:
        """Where ``column`` (a key of :data:`COLUMNS`) starts, in columns from the left."""
        left = 0
        for (_, key), width in zip(COLUMNS, self._widths, strict=True):
            if key == column:
                return left
            left += width + GAP
        raise KeyError(column)

    def column_at(self, x: int) -> str | None:
        """The key of the column drawn at ``x`` (columns from the left edge), if any."""
        left = 0
        for (_, key), width in zip(COLUMNS, self._widths, strict=True):
            if left <= x < left + width + GAP:
                return key
            left += width + GAP
        return None

    def _on_focus(self, event: events.Focus) -> None:
        self._invalidate(self.cursor_row)  # the cursor is drawn brighter with focus

    def _on_blur(self, event: events.Blur) -> None:
        self._invalidate(self.cursor_row)

    # -- rendering ------------------------------------------------------------------------

    def _layout_columns(self) -> None:
        fixed = [WIDTHS.get(key, self._machine_width if key == "machine" else 0)
                 for _, key in COLUMNS]
        width = self.scrollable_content_region.width or 80
        used = sum(fixed) + GAP * (len(fixed) - 1)
        fixed[-1] = max(20, width - used)  # the error column takes what is left
        self._widths = fixed
        self.virtual_size = Size(sum(fixed) + GAP * (len(fixed) - 1), len(self._order) + 1)

    def _on_resize(self, event: events.Resize) -> None:
        self._layout_columns()
        self._strips.clear()
        self.refresh()

    def _invalidate(self, row: int) -> None:
        if self._strips.pop(row, None) is not None or 0 <= row < len(self._order):
            # Virtual line row + 1 (the header is line 0, drawn over the top of the view).
            self.refresh_lines(row + 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = int(self.scroll_x)
        if y == 0:
            strip = self._row_strip(self._header_labels(),
                                    self.get_component_rich_style("run-table--header"))
        else:
            row = int(self.scroll_y) + y - 1
            if not 0 <= row < len(self._order):
                return Strip.blank(width, self.rich_style)
            strip = self._strips.get(row) or self._render_row(row)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _render_row(self, row: int) -> Strip:
        if row == self.cursor_row:
            base = self.get_component_rich_style("run-table--cursor")
        elif row % 2:
            base = self.get_component_rich_style("run-table--even-row")
        else:
            base = self.rich_style
        strip = self._row_strip(self._cells[self._order[row]], base,
                                over=row == self.cursor_row)
        self._strips[row] = strip
        return strip

    def _header_labels(self) -> list[str]:
        order = self.row_order
        arrow = " ▼" if order.descending else " ▲"
        return [label + arrow if key == order.column else label for label, key in COLUMNS]

    def _row_strip(self, cells: tuple[Cell, ...] | list[str], base: Style, *,
                   over: bool = False) -> Strip:
        """A row drawn on ``base``; ``over``: ``base``'s colours win over the cells' (the
        cursor, as in Textual's DataTable: a state's colour on it may not read)."""
        segments: list[Segment] = []
        for column, (cell, width) in enumerate(zip(cells, self._widths, strict=True)):
            text = cell if isinstance(cell, Text) else Text(cell)
            text = text.copy()
            text.truncate(width, overflow="ellipsis", pad=True)
            for segment in text.render(self.app.console, end=""):
                if segment.text:
                    style = segment.style
                    if style:
                        style = style + base if over else base + style
                    segments.append(Segment(segment.text, style or base))
            if column < len(self._widths) - 1:
                segments.append(Segment(" " * GAP, base))
        return Strip(segments)
