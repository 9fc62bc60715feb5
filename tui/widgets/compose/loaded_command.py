"""What the composer was loaded with, said above its editors: a saved command (its name,
description and whether it is dangerous) or a built-in run command (its id, and that it runs
through the action API); hidden while the composer holds an ad-hoc script.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.azure.action_commands import BuiltinCommand
from core.library import SavedCommand


def builtin_script_note(builtin: BuiltinCommand) -> str:
    """What a built-in's editors hold (read-only): Azure runs its own script."""
    return (f"# built-in run command {builtin.id}: {builtin.label}\n"
            "# Azure runs its own script through the action API: no script of yours; its "
            "parameters are below.\n")


class LoadedCommand(Static):
    """The banner above the editors; shown once something is loaded (class ``-loaded``)."""

    DEFAULT_CSS = """
    LoadedCommand { height: auto; padding: 0 1; display: none; }
    LoadedCommand.-loaded { display: block; }
    """

    def __init__(self) -> None:
        super().__init__(id="saved-command")

    def show_saved(self, saved: SavedCommand | None) -> None:
        self.set_class(saved is not None, "-loaded")
        if saved is None:
            return
        text = Text.assemble(("saved command ", "dim"), (saved.name, "bold"))
        if saved.description:
            text.append(f" · {saved.description}")
        if saved.dangerous:
            text.append("\n⚠ dangerous: it changes state; the run asks you to type the "
                        "number of machines", style="bold red")
        self.update(text)

    def show_builtin(self, builtin: BuiltinCommand) -> None:
        self.set_class(True, "-loaded")
        self.update(Text.assemble(("built-in ", "dim"), (builtin.id, "bold"),
                                  f" · {builtin.description} · action API: no exit code, the "
                                  "last 4 KB of output"))
