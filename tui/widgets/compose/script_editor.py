"""The script editor: a code editor highlighted for the command type it writes.

``tab`` leaves it (focus moves on, as everywhere else in the app), so moving through the
composer can never put a tab into a saved command's script; ``ctrl+i`` (binding
``script_editor.indent``; terminals without the kitty keyboard protocol send ctrl+i as tab,
so ``ctrl+]`` does it too) indents, ``esc`` leaves the editor as well.

RunShellScript is highlighted as bash (a grammar of Textual's ``syntax`` extra) and
RunPowerShellScript as PowerShell, with the grammar and highlight query the
``tree-sitter-powershell`` package ships; without either package the editor shows plain
text.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

from textual import events, log
from textual.reactive import reactive
from textual.widgets import TextArea
from textual.widgets.text_area import LanguageDoesNotExist

from core.model import CommandId, OsType
from tui import keymap

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
    """A code editor (line numbers; tab and esc leave it, ctrl+i indents) for one command type.

    Its ``language`` follows ``command_id``: change the command type and the highlighting
    changes with it.

    Args:
        command_id: The command type the script is for.
        text: The script to start with.
        widget_id: The widget's id.
    """

    BINDINGS = keymap.SCRIPT_EDITOR

    command_id: reactive[CommandId] = reactive(CommandId.SHELL, init=False)
    """The command type the script is for; it sets the language and the title."""

    def __init__(self, command_id: CommandId, text: str = "", *,
                 widget_id: str | None = None) -> None:
        super().__init__(text, theme="monokai", soft_wrap=False, tab_behavior="focus",
                         show_line_numbers=True, id=widget_id)
        grammar = powershell_grammar()
        if grammar is not None:
            self.register_language(LANGUAGE[CommandId.POWERSHELL], *grammar)
        self.set_reactive(ScriptEditor.command_id, command_id)
        self._watch_command_id(command_id)

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "escape" and not self.read_only:
            # Leave the editor first; a second esc then reaches the screen (cancel).
            event.stop()
            event.prevent_default()
            self.screen.focus_next()
            return
        await super()._on_key(event)

    def action_indent(self) -> None:
        """Insert spaces up to the next tab stop (tab itself moves focus on)."""
        if self.read_only:
            return
        columns = self._find_columns_to_next_tab_stop()
        indent = "\t" if self.indent_type == "tabs" else " " * columns
        start, end = self.selection
        self._replace_via_keyboard(indent, start, end)

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
