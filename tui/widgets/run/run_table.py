"""The run's machine table: one row per machine, state as glyph and colour, time and bytes."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from core.model import MachineId, MachineRun, Run, RunState

STATE_STYLE: dict[RunState, tuple[str, str]] = {
    RunState.PENDING: ("·", "dim"),
    RunState.RUNNING: ("▶", "cyan"),
    RunState.SUCCEEDED: ("✓", "green"),
    RunState.FAILED: ("✗", "red"),
    RunState.TIMED_OUT: ("⌛", "red"),
    RunState.CANCELED: ("⊘", "yellow"),
    RunState.SKIPPED: ("↷", "dim"),
    RunState.NOT_STARTED: ("○", "yellow"),
    RunState.UNKNOWN: ("?", "magenta"),
}
"""Glyphs as well as colours, so states read without colour too."""

COLUMNS = (("state", "state"), ("machine", "machine"), ("elapsed", "elapsed"),
           ("exit", "exit"), ("out", "out"), ("err", "err"), ("error", "error"))


def state_text(state: RunState) -> Text:
    glyph, style = STATE_STYLE[state]
    return Text(f"{glyph} {state.value}", style=style)


def duration_text(seconds: float | None) -> str:
    """``42s``, ``3m07s``, ``1h02m``; empty before the machine started."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def size_text(count: int) -> str:
    """Bytes for people: ``0``, ``812 B``, ``4.0 KB``, ``1.5 MB``."""
    if count == 0:
        return "0"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


class RunTable(DataTable[Text | str]):
    """The machines of a run, keyed by machine id, in the run's order.

    :meth:`refresh_from` compares each row with what it last drew and updates only the
    cells that changed; rows whose final state is drawn are not looked at again.
    """

    DEFAULT_CSS = """
    RunTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._drawn: dict[MachineId, tuple[Text | str, ...]] = {}
        self._settled: set[MachineId] = set()
        self._order: list[MachineId] = []

    def on_mount(self) -> None:
        # Columns whose values change get room for their widest value up front: widths are
        # set when the first rows are drawn, and a later "✓ Succeeded" must not be cut.
        widths = {"state": 12, "elapsed": 8, "exit": 5}
        for label, key in COLUMNS:
            self.add_column(label, key=key, width=widths.get(key))

    def load(self, run: Run, now: datetime | None = None) -> None:
        """Draw every machine of ``run`` (once, when the screen opens)."""
        self.clear()
        self._drawn.clear()
        self._settled.clear()
        self._order = list(run.machines)
        for machine_id, mr in run.machines.items():
            cells = row_cells(mr, now)
            self._drawn[machine_id] = cells
            self.add_row(*cells, key=machine_id)
            if mr.state.terminal:
                self._settled.add(machine_id)

    def refresh_from(self, run: Run, now: datetime | None = None) -> int:
        """Redraw the cells that changed since the last call; returns how many did."""
        changed = 0
        for machine_id, mr in run.machines.items():
            if machine_id in self._settled:
                continue
            cells = row_cells(mr, now)
            before = self._drawn.get(machine_id)
            if before is None:
                continue
            for (_, key), old, new in zip(COLUMNS, before, cells, strict=True):
                if old != new:
                    self.update_cell(machine_id, key, new)
                    changed += 1
            self._drawn[machine_id] = cells
            if mr.state.terminal:
                self._settled.add(machine_id)
        return changed

    def current_machine_id(self) -> MachineId | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]


def row_cells(mr: MachineRun, now: datetime | None = None) -> tuple[Text | str, ...]:
    return (
        state_text(mr.state),
        mr.machine.name,
        duration_text(mr.elapsed(now)),
        "" if mr.exit_code is None else str(mr.exit_code),
        size_text(mr.stdout_bytes),
        size_text(mr.stderr_bytes),
        mr.error,
    )
