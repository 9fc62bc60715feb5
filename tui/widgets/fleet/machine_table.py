"""The fleet's machine table: one row per machine, marks, health as glyph and colour."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.message import Message

from core.health_cache import age_text
from core.model import HealthStatus, Machine, MachineId, utc_now
from tui.states import HEALTH
from tui.widgets.vim_table import VimTable

HEALTH_STYLE: dict[HealthStatus, tuple[str, str]] = {
    status: (look.glyph, look.tone.value) for status, look in HEALTH.items()
}
"""Each status's glyph and style (:data:`tui.states.HEALTH`, the one table of them)."""

MARK = "●"


def health_text(status: HealthStatus, note: str = "") -> Text:
    """The status as glyph and colour; ``note`` says why in its place (e.g. a host key)."""
    glyph, style = HEALTH_STYLE[status]
    return Text(f"{glyph} {note or status.value}", style=style)


def tags_text(tags: dict[str, str] | Iterable[tuple[str, str]]) -> str:
    items = tags.items() if isinstance(tags, dict) else tags
    return " ".join(f"{k}={v}" if v else k for k, v in sorted(items))


class MachineTable(VimTable[Text | str]):
    """Machines, one per row, keyed by machine id; marked rows carry a ``●``.

    Marks belong to machines, not rows: a machine hidden by the filter keeps its mark.
    """

    DEFAULT_CSS = """
    MachineTable { height: 1fr; }
    """

    class MarksChanged(Message):
        """The set of marked machines changed."""

        def __init__(self, marked: frozenset[MachineId]) -> None:
            self.marked = marked
            super().__init__()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._marked: set[MachineId] = set()
        self._shown: list[Machine] = []
        self._health_notes: dict[MachineId, str] = {}

    def on_mount(self) -> None:
        self.add_column("", key="mark", width=1)
        for label, key in (("name", "name"), ("kind", "kind"), ("os", "os"),
                           ("health", "health"), ("checked", "checked"), ("agent", "agent"),
                           ("where", "where"), ("tags", "tags")):
            self.add_column(label, key=key)

    @property
    def marked(self) -> frozenset[MachineId]:
        return frozenset(self._marked)

    @property
    def shown(self) -> Sequence[Machine]:
        return tuple(self._shown)

    def set_health_notes(self, notes: Mapping[MachineId, str]) -> None:
        """Short reasons shown instead of some machines' health status, from the next show."""
        self._health_notes = dict(notes)

    def show(self, machines: Sequence[Machine]) -> None:
        """Show these machines (in this order), keeping the cursor on the same machine."""
        current = self.current_machine()
        self._shown = list(machines)
        self.clear()
        rows = [self._cells(machine) for machine in machines]
        self._fit_columns(rows)
        for machine, cells in zip(machines, rows, strict=True):
            self.add_row(*cells, key=machine.id)
        if current is not None and current.id in self.rows:
            self.move_cursor(row=self.get_row_index(current.id))

    def refresh_ages(self) -> None:
        """Say again how long ago each shown machine was checked (time moved on)."""
        now = utc_now()
        for machine in self._shown:
            self.update_cell(machine.id, "checked", _age_cell(machine, now))

    def _fit_columns(self, rows: Sequence[tuple[Text | str, ...]]) -> None:
        # Widths set here, with the rows: a DataTable left to size its columns does so on a
        # later idle, and draws the rows in between with the widths of the rows before.
        for index, column in enumerate(self.ordered_columns[1:], start=1):
            widest = max((cell_len(str(row[index])) for row in rows), default=0)
            column.auto_width = False
            column.width = max(widest, cell_len(column.label.plain))

    def current_machine(self) -> Machine | None:
        if not self._shown or self.cursor_row >= len(self._shown):
            return None
        return self._shown[self.cursor_row]

    def toggle_mark(self) -> None:
        machine = self.current_machine()
        if machine is None:
            return
        self._set_marks(self._marked ^ {machine.id})
        if self.cursor_row < len(self._shown) - 1:
            self.move_cursor(row=self.cursor_row + 1)

    def mark_shown(self) -> None:
        self._set_marks(self._marked | {m.id for m in self._shown})

    def invert_shown(self) -> None:
        self._set_marks(self._marked ^ {m.id for m in self._shown})

    def _set_marks(self, marked: set[MachineId]) -> None:
        changed = marked ^ self._marked
        self._marked = marked
        for machine_id in changed:
            if machine_id in self.rows:
                self.update_cell(machine_id, "mark", MARK if machine_id in marked else "")
        self.post_message(self.MarksChanged(self.marked))

    def _cells(self, machine: Machine) -> tuple[Text | str, ...]:
        health = machine.health
        where = machine.location or machine.address
        return (
            MARK if machine.id in self._marked else "",
            machine.name,
            machine.kind.value,
            machine.os.value,
            health_text(health.status, self._health_notes.get(machine.id, "")),
            _age_cell(machine, utc_now()),
            health.agent_version or "",
            where,
            tags_text(dict(machine.tags)),
        )


def _age_cell(machine: Machine, now: datetime) -> Text:
    # Dim: the age qualifies the health beside it; "unknown" for a machine never checked.
    return Text(age_text(machine.health.checked_at, now), style="dim")
