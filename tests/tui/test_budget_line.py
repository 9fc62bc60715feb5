"""The run screen's budget line: Azure's queue and counts while a run waits on ARM's budget."""

from __future__ import annotations

from textual.app import App, ComposeResult

from core.azure.budget_view import ScopeState
from core.azure.scope import ThrottleScope
from tui.widgets.run.budget_line import BudgetLine

SCOPE = ThrottleScope("44444444-4444-4444-8444-444444444444")


class Lines(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.states: list[ScopeState] = []

    def compose(self) -> ComposeResult:
        yield BudgetLine(lambda: self.states)


def writes_waiting(queued: int, remaining: int) -> list[ScopeState]:
    return [ScopeState(SCOPE, "reads", 0, 0, 0, 250, 25.0, 0.0, 0),
            ScopeState(SCOPE, "writes", queued, queued, 0, remaining, 10.0, 0.0, 0)]


async def test_the_line_shows_what_waits_for_a_token_and_hides_when_nothing_does() -> None:
    app = Lines()
    async with app.run_test(size=(100, 5)) as pilot:
        line = app.query_one(BudgetLine)
        line.refresh_from(running=True)
        await pilot.pause()
        assert not line.display  # no Azure budget (an SSH or local run): no line at all

        app.states = writes_waiting(11, 0)
        line.refresh_from(running=True)
        await pilot.pause()
        assert line.display
        shown = str(line.render())
        assert shown.startswith("Queued 11 for a write token · ETA ")
        assert shown.endswith(" · reads 250 left, writes 0 left")

        line.refresh_from(running=False)  # the run ended: nothing waits any more
        await pilot.pause()
        assert not line.display
