"""Checkboxes and radio buttons say their state in their glyph, not only in their colour."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import RadioSet

from tui.widgets.toggles import StateCheckbox, StateRadioButton


class Toggles(App[None]):
    def compose(self) -> ComposeResult:
        yield StateCheckbox("off", id="off")
        yield StateCheckbox("on", True, id="on")
        with RadioSet():
            yield StateRadioButton("first", value=True, id="first")
            yield StateRadioButton("second", id="second")


def glyph(widget: StateCheckbox | StateRadioButton) -> str:
    return widget.render().plain[:3]


async def test_the_glyph_follows_the_value_without_colour() -> None:
    app = Toggles()
    async with app.run_test() as pilot:
        off, on = app.query_one("#off", StateCheckbox), app.query_one("#on", StateCheckbox)
        assert (glyph(off), glyph(on)) == ("▐ ▌", "▐X▌")
        off.toggle()
        await pilot.pause()
        assert glyph(off) == "▐X▌"
        first = app.query_one("#first", StateRadioButton)
        second = app.query_one("#second", StateRadioButton)
        assert (glyph(first), glyph(second)) == ("▐●▌", "▐ ▌")
        second.value = True  # the set turns the other one off
        await pilot.pause()
        assert (glyph(first), glyph(second)) == ("▐ ▌", "▐●▌")
