"""Which machines of an ended run to run again: a checkbox per end state, with its count.

Failed and timed out are ticked to start with (what "rerun" usually means); canceled and
not started are a tick away. The last line says how many machines the choice comes to, and
enter runs exactly those.
"""

from __future__ import annotations

from collections import Counter

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Static

from core.model import Run, RunState
from tui import keymap
from tui.widgets.toggles import StateCheckbox

CHOICES: tuple[tuple[RunState, str], ...] = (
    (RunState.FAILED, "failed"),
    (RunState.TIMED_OUT, "timed out"),
    (RunState.CANCELED, "canceled"),
    (RunState.NOT_STARTED, "not started"),
)
"""The states a rerun can pick up, in the order they are offered."""

PRESELECTED = frozenset({RunState.FAILED, RunState.TIMED_OUT})


class RerunDialog(ModalScreen[frozenset[RunState] | None]):
    """Dismissed with the chosen states (enter), or None (esc).

    Args:
        run: The ended run whose machines are counted.
    """

    BINDINGS = keymap.RERUN
    DEFAULT_CSS = """
    RerunDialog { align: center middle; }
    RerunDialog > Vertical {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    RerunDialog Checkbox { width: 100%; margin: 0 0 0 2; }
    RerunDialog #rerun-question { margin-bottom: 1; }
    RerunDialog #rerun-total { margin-top: 1; text-style: bold; }
    RerunDialog #rerun-keys { color: $text-muted; }
    """

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run_id = run.run_id
        self.counts = Counter(mr.state for mr in run.machines.values())

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Rerun machines of run {self.run_id}: which ones?",
                         id="rerun-question")
            for state, label in CHOICES:
                count = self.counts[state]
                yield StateCheckbox(f"{label} ({count})", state in PRESELECTED and count > 0,
                                    id=f"rerun-{state.value}", disabled=count == 0,
                                    compact=True)  # a line each: fits 80x24
            yield Static(id="rerun-total")
            yield Static("space ticks · enter reruns · esc goes back", id="rerun-keys")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "rerun"
        enabled = [c for c in self.query(Checkbox) if not c.disabled]
        if enabled:
            enabled[0].focus()
        self._show_total()

    @property
    def chosen(self) -> frozenset[RunState]:
        return frozenset(state for state, _ in CHOICES
                         if self.query_one(f"#rerun-{state.value}", Checkbox).value)

    @property
    def total(self) -> int:
        """How many machines the ticked states come to."""
        return sum(self.counts[state] for state in self.chosen)

    @on(Checkbox.Changed)
    def _show_total(self) -> None:
        total = self.total
        line = (Text(f"Rerun {total} machine(s)", style="bold") if total
                else Text("Nothing ticked: tick at least one state (space)", style="yellow"))
        self.query_one("#rerun-total", Static).update(line)

    def action_confirm(self) -> None:
        if not self.total:
            self.notify("Nothing to rerun: tick a state that has machines", severity="warning")
            return
        self.dismiss(self.chosen)

    def action_cancel(self) -> None:
        self.dismiss(None)
