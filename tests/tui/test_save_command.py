"""ctrl+s in the composer: the saved file holds the script and the parameter names, never a
protected value; the palette finds it at once and loads everything but the secret."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from textual.widgets import Input, Static, TextArea

from tests.tui.saved_fixtures import (
    CANARY,
    GREET,
    palette_search,
    sandbox_app,
    screen_text,
    set_value,
    typed_rows,
    until,
)
from tests.tui.test_compose import WEB1, ComposeApp, add_parameter
from tests.tui.test_fleet_screen import fleet_screen
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.save_command import SaveCommandDialog, suggested_name
from tui.widgets.compose.confirm_run import ConfirmRun

SIZE = (160, 45)
SCRIPT = '# Check the greeting\necho "$GREETING $TOKEN"\n'


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FleetrunApp:
    return sandbox_app(tmp_path, monkeypatch, {"greet.toml": GREET})


async def compose_on_web1(pilot: object, app: FleetrunApp) -> ComposeScreen:
    await fleet_screen(pilot, app)
    await pilot.press("slash", *"name:web-1", "enter", "c")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, ComposeScreen),  # type: ignore[arg-type]
                "the composer")
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    return screen


async def save_as(pilot: object, app: FleetrunApp, name: str, description: str,
                  tags: str) -> None:
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, SaveCommandDialog),  # type: ignore[arg-type]
                "the save dialog")
    dialog = app.screen
    dialog.query_one("#save-name", Input).value = name
    dialog.query_one("#save-description", Input).value = description
    dialog.query_one("#save-tags", Input).value = tags
    await pilot.press("enter")  # type: ignore[attr-defined]


async def test_save_as_round_trip_keeps_everything_but_the_secret(
        app: FleetrunApp, tmp_path: Path) -> None:
    saved_file = tmp_path / "config" / "commands" / "check-greeting.toml"
    async with app.run_test(size=SIZE) as pilot:
        screen = await compose_on_web1(pilot, app)
        screen.query_one(TextArea).text = SCRIPT
        screen.query_one(TextArea).focus()
        await add_parameter(pilot, "GREETING", "bonjour")
        await add_parameter(pilot, "TOKEN", CANARY, protected=True)
        screen.query_one("#timeout", Input).value = "90"
        await save_as(pilot, app, "check-greeting", "Greets, with a token", "demo, greet")
        await until(pilot, lambda: app.screen is screen, "the dialog closed")
        assert any(f"Saved check-greeting to {saved_file}" in str(n.message)
                   for n in app._notifications)

        raw = saved_file.read_bytes()
        assert CANARY.encode() not in raw
        doc = tomllib.loads(raw.decode())
        assert doc["scripts"] == {"shell": SCRIPT}
        assert doc["description"] == "Greets, with a token"
        assert doc["tags"] == ["demo", "greet"]
        assert doc["timeout"] == 90
        assert doc["parameters"] == [{"name": "GREETING", "default": "bonjour"},
                                     {"name": "TOKEN", "protected": True}]
        assert saved_file.stat().st_mode & 0o777 == 0o600

        # In the palette at once; loading it fills everything but the secret.
        await pilot.press("escape", "escape")  # the editor, then the composer
        await until(pilot, lambda: not isinstance(app.screen, ComposeScreen), "the fleet")
        hits = await palette_search(pilot, "chkgreet")
        assert hits[0] == "check-greeting"
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                    and app.screen.loaded is not None, "the loaded composer")
        again = app.screen
        assert isinstance(again, ComposeScreen) and again is not screen
        assert again.query_one(TextArea).text == SCRIPT
        rows = typed_rows(app)
        assert rows["GREETING"].value == "bonjour"
        assert rows["TOKEN"].value == "" and rows["TOKEN"].spec.protected
        assert again.query_one("#timeout", Input).value == "90"
        assert CANARY not in screen_text(app)
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert CANARY.encode() not in path.read_bytes(), path


async def test_saving_a_loaded_command_keeps_its_table_and_asks_before_replacing(
        app: FleetrunApp, tmp_path: Path) -> None:
    greet_file = tmp_path / "config" / "commands" / "greet.toml"
    async with app.run_test(size=SIZE) as pilot:
        await fleet_screen(pilot, app)
        await palette_search(pilot, "greet-hosts")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                    and app.screen.loaded is not None, "the loaded composer")
        composer = app.screen
        rows = typed_rows(app)
        set_value(rows["GREETING"], "hi")
        set_value(rows["TOKEN"], CANARY)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveCommandDialog), "the dialog")
        dialog = app.screen
        assert dialog.query_one("#save-name", Input).value == "greet-hosts"
        assert dialog.query_one("#save-description", Input).value == "Say hello from each host"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog  # asked first
        assert "greet-hostsexists" in screen_text(app)
        assert GREET == greet_file.read_text()
        await pilot.press("enter")  # again: replace
        await until(pilot, lambda: app.screen is composer, "the dialog closed")
        text = greet_file.read_text()
        assert CANARY not in text
        doc = tomllib.loads(text)
        greeting, token, count = doc["parameters"]
        assert greeting == {"name": "GREETING", "description": "What to say", "default": "hi",
                            "choices": ["hello", "hi"]}
        assert token == {"name": "TOKEN", "required": True, "protected": True}
        assert count == {"name": "COUNT", "pattern": "^[0-9]+$"}
        assert list((tmp_path / "config" / "commands").glob("*.toml")) == [greet_file]


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


async def test_a_bad_name_or_a_positional_parameter_is_said_in_the_dialog(
        config_dir: Path) -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        app.screen.query_one(TextArea).text = "echo $1"
        app.screen.query_one(TextArea).focus()
        await add_parameter(pilot, "", "first")  # positional
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveCommandDialog), "the dialog")
        dialog = app.screen
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "parameter 1 of the shell script has no name" in said(dialog)
        await pilot.press("escape")  # back to the composer: name the parameter
        await pilot.pause()
        app.screen.query_one(".name", Input).value = "FIRST"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveCommandDialog), "the dialog")
        dialog = app.screen
        dialog.query_one("#save-name", Input).value = "no spaces please"
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen is dialog
        assert "'no spaces please' is not allowed" in said(dialog)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ComposeScreen)
    assert not (config_dir / "commands").exists() or not any((config_dir / "commands").iterdir())


def said(dialog: object) -> str:
    """The dialog's message line."""
    assert isinstance(dialog, SaveCommandDialog)
    return str(dialog.query_one("#save-message", Static).content)


async def test_saving_with_no_script_says_so(config_dir: Path) -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ComposeScreen)
        assert any("Nothing to save" in str(n.message) for n in app._notifications)
        assert not isinstance(app.screen, ConfirmRun)


def test_the_offered_name_comes_from_the_script() -> None:
    assert suggested_name(["#!/bin/bash\n# Check disk usage now\ndf -h\n"]) == \
        "check-disk-usage-now"
    assert suggested_name(["", "Get-Service -Name w32time\n"]) == "get-service-name-w32time"
    assert suggested_name(["   \n"]) == ""
