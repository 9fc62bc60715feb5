"""Azure's throttle budget under the run summary: what waits for a token, what is left, ETA.

Shown only while the run goes and the budget has something to say (an SSH or local run has
no ARM budget; a finished run waits for nothing). The text is core's
(:func:`core.azure.budget_view.budget_line`), the same line the CLI's progress shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.widgets import Static

from core.azure.budget import live_states
from core.azure.budget_view import ScopeState, budget_line
from core.terminal_text import inert


class BudgetLine(Static):
    """One line of Azure's budget while a run goes; hidden when there is nothing to say."""

    DEFAULT_CSS = """
    BudgetLine { height: 1; padding: 0 1; color: $text-muted; display: none; }
    BudgetLine.shown { display: block; }
    """

    def __init__(self, states: Callable[[], Iterable[ScopeState]] = live_states,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._states = states
        self._text = ""

    def refresh_from(self, running: bool) -> None:
        """Redraw from the budgets now (only when the text changed)."""
        text = inert(budget_line(self._states())) if running else ""
        if text == self._text:
            return
        self._text = text
        self.set_class(bool(text), "shown")
        self.update(text)
