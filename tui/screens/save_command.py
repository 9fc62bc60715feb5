"""Save what the composer holds as a saved command (ctrl+s): name, description, tags.

The file is written by :func:`core.library.save_command` from
:func:`core.library.saved_command_from`: protected values are never written (the file keeps
the parameter's name and its protected flag). A command loaded from the library keeps its
parameter table (descriptions, required, choices, patterns), with the values in the
composer as the new defaults. The library is read again at once, so the palette and
``:run`` know the command as soon as the dialog closes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from core.library import (
    LibraryError,
    SavedCommand,
    save_command,
    saved_command_from,
    suggest_name,
)
from core.model import Command, CommandId, OsType
from tui import keymap
from tui.library_store import SavedCommands
from tui.widgets.toggles import StateCheckbox


def split_tags(text: str) -> list[str]:
    """Tags as typed: separated by commas and/or spaces."""
    return [t for t in text.replace(",", " ").split() if t]


def command_to_save(commands: Mapping[CommandId, Command], name: str, description: str,
                    tags: Sequence[str], *, dangerous: bool,
                    loaded: SavedCommand | None,
                    parameter_os: Mapping[str, OsType] | None = None) -> SavedCommand:
    """The saved command for what the composer holds.

    Args:
        commands: One command per script in the composer (parameters with their values).
        name: The command's name.
        description: One line for the palette.
        tags: Words to search by.
        dangerous: Running it needs a typed confirmation.
        loaded: The saved command the composer was loaded with: its parameters keep their
            description, required flag, choices and pattern.
        parameter_os: Parameters marked for one OS only (the rows' OS buttons), by name.

    Raises:
        LibraryError: Nothing to save, a bad name, a positional parameter, ...
    """
    saved = saved_command_from(commands, name, description, tags, dangerous=dangerous,
                               parameter_os=parameter_os)
    if loaded is None:
        return saved
    params = []
    for param in saved.parameters:
        spec = loaded.parameter(param.name)
        if spec is not None:
            protected = spec.protected or param.protected
            param = replace(spec, protected=protected, os=param.os,
                            default="" if protected else param.default)
        params.append(param)
    return replace(saved, parameters=tuple(params))


class SaveCommandDialog(ModalScreen[SavedCommand | None]):
    """Dismissed with the command as saved, or None when canceled.

    Args:
        commands: What the composer holds, one command per script.
        store: The app's library (read again after the save).
        loaded: The saved command the composer was loaded with, if any (its name,
            description, tags and parameter table are the starting point).
        suggested_name: The name offered when nothing was loaded.
        parameter_os: Parameters marked for one OS only, by name (saved with the command).
    """

    BINDINGS = keymap.SAVE_COMMAND
    DEFAULT_CSS = """
    SaveCommandDialog { align: center middle; }
    SaveCommandDialog > Vertical {
        width: 90; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    SaveCommandDialog Label { color: $text-muted; margin-top: 1; }
    SaveCommandDialog #save-message { height: auto; margin-top: 1; }
    SaveCommandDialog #save-message.error { color: $text-error; }
    SaveCommandDialog #save-buttons { height: auto; margin-top: 1; }
    SaveCommandDialog Button { margin-right: 2; }
    """

    def __init__(self, commands: Mapping[CommandId, Command], store: SavedCommands,
                 loaded: SavedCommand | None = None, suggested_name: str = "",
                 parameter_os: Mapping[str, OsType] | None = None) -> None:
        super().__init__()
        self.parameter_os = dict(parameter_os or {})
        self.commands = dict(commands)
        self.store = store
        self.loaded = loaded
        self.suggested_name = suggested_name
        self._replace_confirmed: str | None = None

    def compose(self) -> ComposeResult:
        loaded = self.loaded
        with Vertical():
            yield Static("[b]Save as a saved command[/b] (ctrl+p and :run find it)")
            yield Label("Name (what :run NAME takes: letters, digits, '.', '_' and '-')")
            yield Input(loaded.name if loaded else self.suggested_name, id="save-name")
            yield Label("Description (one line, shown in the palette)")
            yield Input(loaded.description if loaded else "", id="save-description")
            yield Label("Tags (separated by spaces or commas)")
            yield Input(" ".join(loaded.tags) if loaded else "", id="save-tags")
            yield StateCheckbox("dangerous: it changes state (a run asks to type the machine "
                           "count)", loaded.dangerous if loaded else False, id="save-dangerous")
            yield Static("Protected values are not saved: the file keeps their names only.",
                         id="save-message")
            with Horizontal(id="save-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#save-name", Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def _text(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def action_save(self) -> None:
        name = self._text("save-name")
        try:
            saved = command_to_save(
                self.commands, name, self._text("save-description"),
                split_tags(self._text("save-tags")),
                dangerous=self.query_one("#save-dangerous", Checkbox).value,
                loaded=self.loaded, parameter_os=self.parameter_os)
        except LibraryError as exc:
            self._say(str(exc), error=True)
            return
        existing = self.store.library.commands.get(saved.name)
        if existing is not None and self._replace_confirmed != saved.name:
            self._replace_confirmed = saved.name
            if existing.builtin:
                self._say(f"{saved.name} is a starter command: save again (enter or ctrl+s) "
                          "to keep yours in its place (the starter one stays in fleetrun)",
                          error=True)
            else:
                self._say(f"{saved.name} exists ({existing.path}): save again (enter or "
                          "ctrl+s) to replace it", error=True)
            return
        if existing is not None and not existing.builtin:
            saved = replace(saved, path=existing.path)  # back into its own file
        try:
            path = save_command(saved, self.store.directory, replace=existing is not None)
        except LibraryError as exc:
            self._say(str(exc), error=True)
            return
        self.store.reload()
        self.app.notify(f"Saved {saved.name} to {path}" + self._secrets_note(saved),
                        title="Saved command", markup=False)
        self.dismiss(self.store.library.commands.get(saved.name, replace(saved, path=path)))

    @staticmethod
    def _secrets_note(saved: SavedCommand) -> str:
        protected = [p.name for p in saved.parameters if p.protected]
        if not protected:
            return ""
        return f" (protected, value not saved: {', '.join(protected)})"

    def _say(self, message: str, *, error: bool = False) -> None:
        shown = self.query_one("#save-message", Static)
        shown.update(Text(message))
        shown.set_class(error, "error")

    def action_cancel(self) -> None:
        self.dismiss(None)


def suggested_name(scripts: Sequence[str]) -> str:
    """A name from the first words of the first script (its first comment or line)."""
    for script in scripts:
        for line in script.splitlines():
            words = line.strip().lstrip("#!").strip()
            if words and not words.startswith("/"):
                return suggest_name(" ".join(words.split()[:4]))
    return ""
