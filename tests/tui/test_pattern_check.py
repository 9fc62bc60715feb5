"""The composer checks a typed parameter as it is typed, and a hostile value cannot freeze it:
a pattern check that takes too long gives up and says so, naming the parameter."""

from __future__ import annotations

import time

from textual.widgets import Input

from core.library import CommandParameter, SavedCommand
from core.model import CommandId
from tests.tui.saved_fixtures import screen_text, until
from tests.tui.test_compose import WEB1
from tests.tui.test_compose_saved import SIZE, SavedComposeApp, loaded
from tui.widgets.compose.typed_parameter import ParameterCheck, TypedParameterRow

EXPLOSIVE = r"^(a|a)+$"
"""Exponential backtracking on ``aaa…ab``: seconds at 26 letters, doubling with each one."""

HOSTILE_VALUE = "a" * 40 + "b"
"""Hours of backtracking without a limit: a check that ends at all has given up."""

GUARD = 30.0
"""Seconds: not a speed goal (the limit is 50 ms), only what tells giving up from hanging."""

PROBE = SavedCommand(name="probe", scripts={CommandId.SHELL: "echo $target\n"},
                     parameters=(CommandParameter("target", pattern=EXPLOSIVE),))


def test_the_as_you_type_check_gives_up_within_milliseconds() -> None:
    check = ParameterCheck(PROBE.parameters[0])
    started = time.monotonic()
    result = check.validate(HOSTILE_VALUE)
    elapsed = time.monotonic() - started
    assert elapsed < GUARD, f"one keystroke's check took {elapsed:.1f} s"
    assert not result.is_valid
    assert result.failure_descriptions == [
        "target pattern too complex to check this value against (gave up after 50 ms); "
        "simplify the saved command's pattern"]


async def test_a_typed_value_the_pattern_cannot_check_is_reported_not_run() -> None:
    app = SavedComposeApp([WEB1], PROBE)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        value = screen.query_one(TypedParameterRow).query_one(Input)
        value.focus()
        await pilot.press(*HOSTILE_VALUE)
        await until(pilot, lambda: value.value == HOSTILE_VALUE, "the typed value")
        assert not value.is_valid
        await pilot.press("ctrl+r")
        await until(pilot, lambda: "patterntoocomplextocheck" in screen_text(app),
                    "the problem listed")
        assert app.screen is screen
        assert app.results == []
