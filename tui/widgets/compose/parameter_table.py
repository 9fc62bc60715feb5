"""The parameter table: one row per parameter (name, protected, OS, value), in order.

A row's OS button says which machines get it: Linux, Windows or both. A positional
(unnamed) parameter is Linux's whatever the button says: only the Linux handler takes
positional arguments, so it never reaches (nor blocks) the Windows machines.

Rows are free (any name, or none for a positional argument) or typed: loaded from a saved
command's parameter table, with a fixed name and a checked value (:mod:`.typed_parameter`).
Both kinds have the OS button (:mod:`.os_button`); a saved command keeps its marks.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Checkbox, Input

from core.library import CommandParameter
from core.model import OsType, Parameter
from tui.widgets.compose.os_button import OS_CHOICES, OsButton, only_os
from tui.widgets.compose.typed_parameter import TypedParameterRow
from tui.widgets.toggles import StateCheckbox


def sent_to(parameter: Parameter, oses: frozenset[OsType], os_type: OsType) -> bool:
    """Whether ``os_type``'s machines get ``parameter``: positional ones are Linux's."""
    if not parameter.named and os_type is not OsType.LINUX:
        return False
    return os_type in oses


class ParameterRow(Horizontal):
    """One parameter. A protected value is masked, and stays masked: unprotecting clears it.

    Args:
        parameter: Its starting name, value and protection.
    """

    DEFAULT_CSS = """
    ParameterRow { height: 3; }
    ParameterRow .name { width: 30; }
    ParameterRow Checkbox { width: auto; }
    ParameterRow OsButton { margin: 1 0 0 1; }
    ParameterRow .value { width: 1fr; }
    """

    def __init__(self, parameter: Parameter | None = None,
                 oses: frozenset[OsType] = OS_CHOICES[0]) -> None:
        super().__init__()
        self._start = parameter or Parameter("", "")
        self._protected = self._start.protected
        self._oses = oses

    def compose(self) -> ComposeResult:
        yield Input(self._start.name, placeholder="name (empty: positional)", classes="name")
        yield StateCheckbox("protected", self._start.protected, classes="protected")
        yield Input(self._start.value, placeholder="value", password=self._start.protected,
                    classes="value")
        # Last, so name → protected → value stays the tab order people learned.
        yield OsButton(self._oses)

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
    def oses(self) -> frozenset[OsType]:
        """The OS whose machines get this parameter (positional: Linux only, see sent_to)."""
        return self.query_one(OsButton).oses

    @property
    def parameter(self) -> Parameter:
        return Parameter(self.query_one(".name", Input).value.strip(),
                         self.query_one(".value", Input).value, self._protected)


class ParameterTable(VerticalScroll):
    """Parameters in order; an empty name makes a positional (unnamed) parameter."""

    DEFAULT_CSS = """
    ParameterTable { height: auto; max-height: 12; }
    ParameterTable.-rows { min-height: 7; max-height: 45%; }
    """

    async def add_row(self, parameter: Parameter | None = None) -> ParameterRow:
        """Add a row at the end and focus its name."""
        row = ParameterRow(parameter)
        await self.mount(row)
        self.add_class("-rows")
        row.query_one(".name", Input).focus()
        self.call_after_refresh(self.scroll_end, animate=False)
        return row

    async def load(self, specs: Sequence[CommandParameter]) -> None:
        """Replace every row with the typed rows of a saved command's parameter table."""
        await self.remove_children()
        await self.mount_all([TypedParameterRow(spec) for spec in specs])
        self.set_class(bool(specs), "-rows")

    def row_of(self, focused: Widget | None) -> ParameterRow | TypedParameterRow | None:
        """The row holding ``focused``, if any."""
        return next((w for w in (focused.ancestors_with_self if focused else [])
                     if isinstance(w, ParameterRow | TypedParameterRow)), None)

    def remove_row(self, focused: Widget | None) -> bool:
        """Remove the row holding ``focused``; False when focus is in no row."""
        row = self.row_of(focused)
        if row is None:
            return False
        rows = list(self.query("ParameterRow, TypedParameterRow"))
        index = rows.index(row)
        row.remove()
        rest = rows[:index] + rows[index + 1:]
        self.set_class(bool(rest), "-rows")
        if rest:
            self.call_after_refresh(rest[min(index, len(rest) - 1)].query_one(Input).focus)
        return True

    @property
    def typed_rows(self) -> list[TypedParameterRow]:
        return list(self.query(TypedParameterRow))

    @property
    def parameters_to_save(self) -> tuple[Parameter, ...]:
        """Every row's parameter for a saved command: a typed row is kept even when empty
        (it is part of the table), with its value, else its default, as the new default."""
        params: list[Parameter] = []
        for row in self.query("ParameterRow, TypedParameterRow"):
            if isinstance(row, TypedParameterRow):
                params.append(row.parameter or Parameter(row.spec.name, "",
                                                         row.spec.protected))
            elif isinstance(row, ParameterRow):
                if (free := row.parameter).name or free.value:
                    params.append(free)
        return tuple(params)

    @property
    def os_marks(self) -> dict[str, OsType]:
        """Named parameters marked for one OS only, by name (a saved command stores these)."""
        marks: dict[str, OsType] = {}
        for row in self.query("ParameterRow, TypedParameterRow"):
            if isinstance(row, ParameterRow | TypedParameterRow):
                name = row.spec.name if isinstance(row, TypedParameterRow) else (
                    row.parameter.name)
                if name and (only := only_os(row.oses)) is not None:
                    marks[name] = only
        return marks

    def parameters_for(self, os_type: OsType) -> tuple[Parameter, ...]:
        """The parameters ``os_type``'s machines get, as each row's OS button says
        (positional ones only on Linux)."""
        return self._collect(os_type)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        """Every row's parameter, in order. Free rows left entirely empty are ignored; a
        typed row sends its value, else its default, else nothing."""
        return self._collect(None)

    def _collect(self, os_type: OsType | None) -> tuple[Parameter, ...]:
        """The rows' parameters in order; for one OS only when ``os_type`` is given."""
        params: list[Parameter] = []
        for row in self.query("ParameterRow, TypedParameterRow"):
            if isinstance(row, TypedParameterRow):
                typed = row.parameter
                if typed is not None and (os_type is None or os_type in row.oses):
                    params.append(typed)
            elif isinstance(row, ParameterRow):
                free = row.parameter
                if not (free.name or free.value):
                    continue
                if os_type is None or sent_to(free, row.oses, os_type):
                    params.append(free)
        return tuple(params)
