"""A parameter row from a saved command's typed table: a fixed name, a value checked as typed.

The name and the protection come from the saved command and cannot be changed here (its OS
mark can: the OS button, as on a free row, starts at the saved mark); the
value starts at the default (a protected one starts empty and masked), choices complete as
they are typed, and a value that does not fit is marked at once, with the core's words
(:meth:`core.library.CommandParameter.check`), so the composer and a headless run agree.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.suggester import SuggestFromList
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Static

from core.library import CommandParameter, SavedCommand
from core.model import OsType, Parameter
from tui.widgets.compose.os_button import OsButton


class ParameterCheck(Validator):
    """The core's check of one parameter; an empty value stands for the default."""

    def __init__(self, spec: CommandParameter) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        why = self.spec.check(SavedCommand.value_of(self.spec, {self.spec.name: value}))
        return self.success() if why is None else self.failure(f"{self.spec.name} {why}")


def hint_text(spec: CommandParameter) -> Text:
    """What the parameter is and what it takes, in one or two short lines."""
    text = Text(style="dim")
    if spec.description:
        text.append(spec.description)
    rules = []
    if spec.required:
        rules.append("required")
    if spec.choices or spec.pattern:
        rules.append(spec.allowed())
    if spec.default:
        rules.append(f"default {spec.default}")
    if rules:
        text.append((" · " if spec.description else "") + " · ".join(rules))
    return text


class TypedParameterRow(Horizontal):
    """One parameter of a saved command.

    Args:
        spec: Its entry in the saved command's parameter table.
    """

    DEFAULT_CSS = """
    TypedParameterRow { height: 3; }
    TypedParameterRow .name { width: 30; padding: 1 1 0 1; }
    TypedParameterRow .value { width: 1fr; }
    TypedParameterRow .hint { width: 1fr; height: 3; padding: 0 1; content-align: left middle; }
    TypedParameterRow OsButton { margin: 1 0 0 1; }
    """

    def __init__(self, spec: CommandParameter) -> None:
        super().__init__()
        self.spec = spec

    def compose(self) -> ComposeResult:
        spec = self.spec
        name = Text(spec.name, style="bold")
        if spec.required:
            name.append(" *", style="bold yellow")  # the theme's warning colour
        if spec.protected:
            name.append(" (protected)", style="dim")
        yield Static(name, classes="name")
        placeholder = "secret: typed, never shown or saved" if spec.protected else (
            f"empty: {spec.default}" if spec.default else spec.allowed())
        yield Input(
            "" if spec.protected else spec.default,
            placeholder=placeholder,
            password=spec.protected,
            suggester=SuggestFromList(spec.choices) if spec.choices else None,
            validators=[ParameterCheck(spec)],
            classes="value",
        )
        yield Static(hint_text(spec), classes="hint")
        yield OsButton(frozenset({spec.os}) if spec.os is not None else frozenset(OsType))

    @property
    def oses(self) -> frozenset[OsType]:
        """The OS whose machines get this parameter (the saved mark, unless changed)."""
        return self.query_one(OsButton).oses

    @property
    def value(self) -> str:
        """The value as typed (empty: the default applies)."""
        return self.query_one(".value", Input).value

    @property
    def parameter(self) -> Parameter | None:
        """What is sent: the value, else the default; None when both are empty (the
        handlers skip an empty parameter, so it is not sent at all)."""
        value = SavedCommand.value_of(self.spec, {self.spec.name: self.value})
        if value == "":
            return None
        return Parameter(self.spec.name, value, self.spec.protected)
