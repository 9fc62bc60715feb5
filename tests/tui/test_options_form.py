"""The composer's run options at 80 and at 160 columns: whole words, never one cut."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Input, Label

from tui.widgets.compose.options_form import OptionsForm


class FormApp(App[None]):
    def compose(self) -> ComposeResult:
        yield OptionsForm()


def shown(form: OptionsForm) -> list[tuple[str, str]]:
    return [(str(form.query_one(f"#{key}-label", Label).render()),
             str(form.query_one(f"#{key}", Input).placeholder))
            for key, *_ in OptionsForm.FIELDS]


async def test_narrow_fields_say_less_in_whole_words_and_wide_ones_say_all() -> None:
    app = FormApp()
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(OptionsForm)
        await pilot.pause()
        room = form.size.width // len(OptionsForm.FIELDS) - 4
        narrow = shown(form)
        assert narrow == [OptionsForm.NARROW_FIELDS[key] for key, *_ in OptionsForm.FIELDS]
        assert all(len(label) <= room and len(hint) <= room for label, hint in narrow)
        await pilot.resize_terminal(160, 45)
        await pilot.pause()
        assert shown(form) == [(label, hint) for _, label, _, hint, _ in OptionsForm.FIELDS]
