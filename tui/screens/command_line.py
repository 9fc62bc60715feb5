"""The ``:`` command line: one line at the bottom of the screen, as in vim and k9s.

What may be typed is listed above the line as it is typed (commands, then saved commands or
themes); tab completes, the right arrow takes the greyed suggestion, enter runs the command,
esc closes the line. A command that cannot run keeps the line open with the reason and what
is allowed (:mod:`tui.colon_commands`).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Static

from tui import keymap
from tui.colon_commands import COMMANDS, USAGE, Action, ColonCommands, CommandLineError

MAX_SHOWN = 40
"""Completions listed above the line at most (the rest are counted)."""


def shared_start(texts: list[str]) -> str:
    """The longest start every one of ``texts`` has (character by character)."""
    first, last = min(texts), max(texts)
    size = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b),
                min(len(first), len(last)))
    return first[:size]


class CommandSuggester(Suggester):
    """The first completion, greyed after what is typed."""

    def __init__(self, commands: ColonCommands) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.commands = commands

    async def get_suggestion(self, value: str) -> str | None:
        if not value.strip():
            return None
        return next((c for c in self.commands.complete(value) if c.startswith(value)), None)


class CommandLine(ModalScreen[Action | None]):
    """Dismissed with the checked command's action, or None (esc).

    Args:
        commands: Parses and completes what is typed.
    """

    BINDINGS = keymap.COMMAND_LINE
    DEFAULT_CSS = """
    CommandLine { align: left bottom; background: transparent; }
    CommandLine > Vertical { height: auto; background: $panel; }
    CommandLine #command-hint { height: auto; max-height: 8; padding: 0 1; color: $text-muted; }
    CommandLine #command-hint.error { color: $text-error; }
    CommandLine Horizontal { height: 1; }
    CommandLine #command-prompt { width: 2; padding-left: 1; text-style: bold; }
    CommandLine Input { border: none; height: 1; padding: 0; width: 1fr; }
    CommandLine Input:focus { border: none; }
    """

    def __init__(self, commands: ColonCommands) -> None:
        super().__init__()
        self.commands = commands

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(USAGE, id="command-hint", markup=False)
            with Horizontal():
                yield Static(":", id="command-prompt")
                yield Input(id="command", suggester=CommandSuggester(self.commands),
                            select_on_focus=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def _hint(self, text: str, *, error: bool = False) -> None:
        hint = self.query_one("#command-hint", Static)
        hint.update(text)
        hint.set_class(error, "error")

    @on(Input.Changed, "#command")
    def _typed(self, event: Input.Changed) -> None:
        self._show_completions(event.value)

    def _show_completions(self, value: str) -> None:
        if not value.strip():
            self._hint(USAGE)
            return
        found = self.commands.complete(value)
        head, typing_argument, _ = value.lstrip(": ").partition(" ")
        spec = COMMANDS.get(head.lower())
        if spec is not None and typing_argument and not self.commands.names(head.lower()):
            self._hint(f":{head.lower()} {spec.argument}: {spec.summary}")
            return
        if not found:
            self._hint(f"No command starts so. {USAGE}")
            return
        words = [c.split(" ", 1)[1] if " " in c.strip() else c.strip() for c in found]
        shown = "  ".join(words[:MAX_SHOWN])
        if len(words) > MAX_SHOWN:
            shown += f"  … {len(words) - MAX_SHOWN} more"
        self._hint(shown)

    @on(Input.Submitted, "#command")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            action = self.commands.parse(event.value)
        except CommandLineError as exc:
            self._hint(str(exc), error=True)
            return
        self.dismiss(action)

    def action_complete(self) -> None:
        """Complete to the one candidate, else to what all candidates share."""
        box = self.query_one("#command", Input)
        found = self.commands.complete(box.value)
        if not found:
            return
        common = found[0] if len(found) == 1 else shared_start(found)
        if len(common) > len(box.value):
            box.value = common
            box.cursor_position = len(common)
        self._show_completions(box.value)

    def action_close(self) -> None:
        self.dismiss(None)
