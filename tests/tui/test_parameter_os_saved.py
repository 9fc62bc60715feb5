"""A parameter marked for one OS survives saving: the file keeps the mark, the composer
reopened on the saved command shows it on the row's OS button, and a run on a mixed fleet
sends the parameter only to that OS's machines."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import Input

from core.library import load_library
from core.model import OsType
from tests.tui.saved_fixtures import until
from tests.tui.test_compose import (
    WEB1,
    WIN1,
    ComposeApp,
    add_parameter,
    shown,
    write_scripts,
)
from tests.tui.test_compose_saved import SavedComposeApp, loaded
from tui.screens.compose import ComposeScreen
from tui.screens.save_command import SaveCommandDialog
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.compose.os_button import OsButton
from tui.widgets.compose.typed_parameter import TypedParameterRow

SIZE = (150, 42)


async def test_the_os_mark_is_saved_reopened_and_applied(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = tmp_path / "config" / "commands"
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    app = ComposeApp([WEB1, WIN1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await write_scripts(pilot, app, linux='echo "$UNIT $REASON"',
                            windows="param($REASON) $REASON")
        await add_parameter(pilot, "UNIT", "nginx")
        await pilot.press("tab", "enter")  # the OS button: both → linux
        await until(pilot, lambda: isinstance(app.focused, OsButton)
                    and app.focused.oses == {OsType.LINUX}, "UNIT marked linux only")
        await add_parameter(pilot, "REASON", "incident")
        composer = app.screen
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveCommandDialog), "the dialog")
        app.screen.query_one("#save-name", Input).value = "restart-unit"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is composer, "saved")
    doc = tomllib.loads((commands / "restart-unit.toml").read_text(encoding="utf-8"))
    assert doc["parameters"] == [{"name": "UNIT", "default": "nginx", "os": "linux"},
                                 {"name": "REASON", "default": "incident"}]

    saved = load_library(commands, include_starter=False).get("restart-unit")
    reopened = SavedComposeApp([WEB1, WIN1], saved)
    async with reopened.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, reopened)
        marks = {row.spec.name: row.query_one(OsButton) for row in
                 screen.query(TypedParameterRow)}
        assert {name: button.oses for name, button in marks.items()} == {
            "UNIT": {OsType.LINUX}, "REASON": {OsType.LINUX, OsType.WINDOWS}}
        assert str(marks["UNIT"].label) == "linux only"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(reopened.screen, ConfirmRun), "the confirmation")
        # The confirmation says what each OS's machines get.
        await until(pilot, lambda: shown("parameters for linux:", reopened)
                    and shown("parameters for windows:", reopened),
                    "each OS's parameters in the confirmation")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(reopened.screen, ComposeScreen | ConfirmRun),
                    "the run requested")
    [request] = reopened.results
    assert request is not None
    sent = {m.os: [(p.name, p.value) for p in c.parameters] for m, c in request.assignments}
    assert sent == {OsType.LINUX: [("UNIT", "nginx"), ("REASON", "incident")],
                    OsType.WINDOWS: [("REASON", "incident")]}
    assert all(c.saved_command == "restart-unit" for _, c in request.assignments)
