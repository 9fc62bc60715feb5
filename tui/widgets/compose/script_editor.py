"""The script editor: a code editor highlighted for the command type it writes.

RunShellScript is highlighted as bash (a grammar of Textual's ``syntax`` extra) and
RunPowerShellScript as PowerShell, with the grammar and highlight query the
``tree-sitter-powershell`` package ships; without either package the editor shows plain
text.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from textual import log
from textual.reactive import reactive
from textual.widgets import TextArea
from textual.widgets.text_area import LanguageDoesNotExist

from core.model import CommandId, OsType

if TYPE_CHECKING:
    from tree_sitter import Language

LANGUAGE: dict[CommandId, str] = {CommandId.SHELL: "bash", CommandId.POWERSHELL: "powershell"}
"""The TextArea language each command type's script is highlighted as."""

TITLE: dict[CommandId, str] = {CommandId.SHELL: "bash (RunShellScript)",
                               CommandId.POWERSHELL: "PowerShell (RunPowerShellScript)"}


@cache
def powershell_grammar() -> tuple[Language, str] | None:
    """tree-sitter-powershell's language and its own highlight query; None if not installed."""
    try:
        import tree_sitter_powershell
        from tree_sitter import Language
    except ImportError:
        return None
    query = files("tree_sitter_powershell").joinpath("queries", "highlights.scm")
    return Language(tree_sitter_powershell.language()), query.read_text(encoding="utf-8")


class ScriptEditor(TextArea):
    """A code editor (line numbers, indent on tab; esc leaves it) for one command type.

    Its ``language`` follows ``command_id``: change the command type and the highlighting
    changes with it.

    Args:
        command_id: The command type the script is for.
        text: The script to start with.
        widget_id: The widget's id.
    """

    command_id: reactive[CommandId] = reactive(CommandId.SHELL, init=False)
    """The command type the script is for; it sets the language and the title."""

    def __init__(self, command_id: CommandId, text: str = "", *,
                 widget_id: str | None = None) -> None:
        super().__init__(text, theme="monokai", soft_wrap=False, tab_behavior="indent",
                         show_line_numbers=True, id=widget_id)
        grammar = powershell_grammar()
        if grammar is not None:
            self.register_language(LANGUAGE[CommandId.POWERSHELL], *grammar)
        self.set_reactive(ScriptEditor.command_id, command_id)
        self._watch_command_id(command_id)

    def _watch_command_id(self, command_id: CommandId) -> None:
        self.border_title = TITLE[command_id]
        try:
            self.language = LANGUAGE[command_id]
        except LanguageDoesNotExist:  # the grammar package is missing: plain text still edits
            log.warning(f"no grammar for {LANGUAGE[command_id]}: {command_id} is plain text")
            self.language = None


def script_editor(os_type: OsType, text: str = "") -> ScriptEditor:
    """The editor for ``os_type``'s script (its command type's), with id ``script-<os>``."""
    return ScriptEditor(CommandId.for_os(os_type), text, widget_id=f"script-{os_type}")
