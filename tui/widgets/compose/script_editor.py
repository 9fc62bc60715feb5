"""A script editor per operating system."""

from __future__ import annotations

from textual.widgets import TextArea

from core.model import OsType

# Textual ships tree-sitter grammars for bash but none for PowerShell; without the optional
# tree-sitter packages installed, the editor falls back to plain text by itself.
LANGUAGE: dict[OsType, str | None] = {OsType.LINUX: "bash", OsType.WINDOWS: None}


def script_editor(os_type: OsType, text: str = "") -> TextArea:
    """A code editor (line numbers, indent on tab; esc leaves it) for ``os_type``'s script."""
    editor = TextArea.code_editor(text, language=LANGUAGE[os_type], id=f"script-{os_type}")
    editor.border_title = ("bash (RunShellScript)" if os_type is OsType.LINUX
                           else "PowerShell (RunPowerShellScript)")
    return editor
