"""The parameter table: one row per parameter (name, protected, value), in the given order."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Checkbox, Input

from core.model import Parameter


class ParameterRow(Horizontal):
    """One parameter. A protected value is masked, and stays masked: unprotecting clears it.

    Args:
        parameter: Its starting name, value and protection.
    """

    DEFAULT_CSS = """
    ParameterRow { height: 3; }
    ParameterRow .name { width: 30; }
    ParameterRow Checkbox { width: auto; }
    ParameterRow .value { width: 1fr; }
    """

    def __init__(self, parameter: Parameter | None = None) -> None:
        super().__init__()
        self._start = parameter or Parameter("", "")
        self._protected = self._start.protected

    def compose(self) -> ComposeResult:
        yield Input(self._start.name, placeholder="name (empty: positional)", classes="name")
        yield Checkbox("protected", self._start.protected, classes="protected")
        yield Input(self._start.value, placeholder="value", password=self._start.protected,
                    classes="value")

    @on(Checkbox.Changed)
    def _protection_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        value = self.query_one(".value", Input)
        if self._protected and not event.value and value.value:
            # Showing a secret in clear because a box was unticked would defeat the mask.
            value.value = ""
            self.notify("The protected value was cleared; type it again (it will show)")
        self._protected = event.value
        value.password = event.value

    @property
    def parameter(self) -> Parameter:
        return Parameter(self.query_one(".name", Input).value.strip(),
                         self.query_one(".value", Input).value, self._protected)


class ParameterTable(VerticalScroll):
    """Parameters in order; an empty name makes a positional (unnamed) parameter."""

    DEFAULT_CSS = """
    ParameterTable { height: auto; max-height: 12; }
    """

    async def add_row(self, parameter: Parameter | None = None) -> ParameterRow:
        """Add a row at the end and focus its name."""
        row = ParameterRow(parameter)
        await self.mount(row)
        row.query_one(".name", Input).focus()
        self.call_after_refresh(self.scroll_end, animate=False)
        return row

    def remove_row(self, focused: Widget | None) -> bool:
        """Remove the row holding ``focused``; False when focus is in no row."""
        row = next((w for w in (focused.ancestors_with_self if focused else [])
                    if isinstance(w, ParameterRow)), None)
        if row is None:
            return False
        rows = list(self.query(ParameterRow))
        index = rows.index(row)
        row.remove()
        rest = rows[:index] + rows[index + 1:]
        if rest:
            self.call_after_refresh(rest[min(index, len(rest) - 1)].query_one(".name").focus)
        return True

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """Rows left entirely empty are ignored."""
        params = (row.parameter for row in self.query(ParameterRow))
        return tuple(p for p in params if p.name or p.value)
