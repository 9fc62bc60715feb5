"""Syntax highlighting in the compose screen: each script's language follows its command id."""

from __future__ import annotations

from textual.widgets import TabbedContent
from textual.widgets.text_area import SyntaxAwareDocument

from core.model import CommandId
from tests.tui.test_compose import WEB1, WIN1, ComposeApp
from tui.widgets.compose.script_editor import ScriptEditor


async def test_each_tab_edits_its_command_ids_language() -> None:
    app = ComposeApp([WEB1, WIN1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        tabs = app.screen.query_one(TabbedContent)
        for tab, command_id, language in (("tab-linux", CommandId.SHELL, "bash"),
                                          ("tab-windows", CommandId.POWERSHELL, "powershell"),
                                          ("tab-linux", CommandId.SHELL, "bash")):
            tabs.active = tab
            await pilot.pause()
            pane = tabs.active_pane
            assert pane is not None
            editor = pane.query_one(ScriptEditor)
            assert editor.command_id is command_id
            assert editor.language == language
            # Parsed with a grammar (so highlighted), not plain text.
            assert isinstance(editor.document, SyntaxAwareDocument)
            assert editor.border_title is not None and str(command_id) in editor.border_title


async def test_changing_the_command_id_changes_the_language() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        editor = app.screen.query_one(ScriptEditor)
        editor.text = "Get-Service | Where-Object { $_.Status -eq 'Running' }"
        editor.command_id = CommandId.POWERSHELL
        await pilot.pause()
        assert editor.language == "powershell"
        assert isinstance(editor.document, SyntaxAwareDocument)
        assert editor.text.startswith("Get-Service")  # the script is kept
        editor.command_id = CommandId.SHELL
        assert editor.language == "bash"


async def test_tab_leaves_the_editor_and_the_script_is_unchanged() -> None:
    app = ComposeApp([WEB1, WIN1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        editor = app.screen.query_one("#script-linux", ScriptEditor)
        editor.text = "echo hi\n"
        editor.focus()
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is not editor
        assert editor.text == "echo hi\n"
        editor.focus()
        editor.move_cursor((1, 0))
        await pilot.press("ctrl+i")  # the indent binding (script_editor.indent)
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause()
        assert editor.text == "echo hi\n        "
        assert app.focused is editor
        await pilot.press("escape")  # esc leaves the editor, not the composer
        await pilot.pause()
        assert app.focused is not editor
        assert app.results == []
