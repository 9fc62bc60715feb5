"""Saved commands in the palette (ctrl+p): found by fuzzy text, loaded, run on the sandbox;
broken files reported once; a dangerous command needs the machine count typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, TextArea

from core.model import RunState
from tests.tui.saved_fixtures import (
    BAD_FIELD,
    CANARY,
    GREET,
    NOT_TOML,
    TOUCH,
    palette_search,
    record_notifications,
    sandbox_app,
    screen_text,
    set_value,
    typed_rows,
    until,
)
from tests.tui.test_fleet_screen import fleet_screen
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.run import RunScreen
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.dialogs.confirm import Confirm

SIZE = (160, 45)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FleetrunApp:
    return sandbox_app(tmp_path, monkeypatch, {
        "greet.toml": GREET, "touch.toml": TOUCH, "half.toml": NOT_TOML,
        "bad-default.toml": BAD_FIELD})


async def mark_web(pilot: object, app: FleetrunApp) -> None:
    await fleet_screen(pilot, app)
    await pilot.press("slash", *"tag:role=web", "enter", "a")  # type: ignore[attr-defined]


async def test_search_load_and_run_a_saved_command(app: FleetrunApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        hits = await palette_search(pilot, "grhst")  # fuzzy: g-r-eet-h-o-s-t-s
        assert hits[0] == "greet-hosts"
        assert "Sayhellofromeachhost·linux·#demo#hello" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the composer")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await until(pilot, lambda: screen.loaded is not None, "the command loaded")
        assert [m.name for m in screen.machines] == ["web-1", "web-2", "web-3"]
        assert screen.query_one(TextArea).text.startswith('echo "$GREETING from $HOSTNAME')
        rows = typed_rows(app)
        assert list(rows) == ["GREETING", "TOKEN", "COUNT"]
        assert rows["GREETING"].value == "hello"
        token = rows["TOKEN"].query_one(Input)
        assert token.value == "" and token.password  # masked, and nothing to show
        assert screen.query_one("#timeout", Input).value == "60"

        set_value(rows["GREETING"], "hi")
        set_value(rows["COUNT"], "2")
        set_value(rows["TOKEN"], CANARY)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
        assert "TOKEN=***(protected)" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        run = run_screen.session.run
        await until(pilot, lambda: run.finished, "the run's end")
        assert {mr.state for mr in run.machines.values()} == {RunState.SUCCEEDED}
        for mr in run.machines.values():
            assert Path(mr.stdout_file).read_text() == (
                f"hi from {mr.machine.name} x2 ({len(CANARY)} secret chars)\n")
            assert mr.command.timeout == 60
    for path in (p for p in tmp_path.rglob("*") if p.is_file()):
        assert CANARY.encode() not in path.read_bytes(), path


async def test_typed_parameters_are_checked_with_what_is_allowed(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        await palette_search(pilot, "greet-hosts")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                    and app.screen.loaded is not None, "the loaded composer")
        rows = typed_rows(app)
        set_value(rows["GREETING"], "yo")
        set_value(rows["COUNT"], "two")
        await pilot.pause()
        assert rows["GREETING"].query_one(Input).has_class("-invalid")  # marked as typed
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ComposeScreen)  # blocked
        text = screen_text(app)
        assert "parameterGREETING:error:'yo'isnotallowed;useoneofhello,hi" in text
        assert "parameterTOKEN:error:isrequired;giveavalue" in text
        assert "parameterCOUNT:error:'two'isnotallowed;useavaluematching^[0-9]+$" in text
        # Empty is the default again; the other two fixed: the run is allowed.
        set_value(rows["GREETING"], "")
        set_value(rows["COUNT"], "3")
        set_value(rows["TOKEN"], CANARY)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
        assert "GREETING=hello" in screen_text(app)


async def test_broken_files_are_reported_once_and_the_rest_load(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = tmp_path / "config" / "commands"
    said = record_notifications(monkeypatch)
    app = sandbox_app(tmp_path, monkeypatch, {
        "greet.toml": GREET, "touch.toml": TOUCH, "half.toml": NOT_TOML,
        "bad-default.toml": BAD_FIELD})
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        [half] = [n for n in said if "half.toml" in n]
        assert f"{commands / 'half.toml'}: not valid TOML" in half
        [bad] = [n for n in said if "bad-default.toml" in n]
        assert f"{commands / 'bad-default.toml'}: parameters[0].default: must be a string" \
            in bad
        hits = await palette_search(pilot, "greet")
        assert "greet-hosts" in hits
        await pilot.press("escape")
        hits = await palette_search(pilot, "disk")  # the starter library loaded too
        assert "disk-usage" in hits
        await pilot.press("escape")
        assert "bad-default" not in await palette_search(pilot, "bad-default")
        # Each palette opening reads the files again; the problems are not told again.
        assert sorted(n for n in said if "toml" in n) == sorted([half, bad])


async def test_a_fixed_file_shows_in_the_palette_without_a_restart(
        app: FleetrunApp, tmp_path: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        assert "half-written" not in await palette_search(pilot, "half")
        await pilot.press("escape")
        (tmp_path / "config" / "commands" / "half.toml").write_text(
            NOT_TOML.replace('"half-written', '"half-written"'))
        assert "half-written" in await palette_search(pilot, "half")


async def test_in_the_composer_it_loads_there_and_asks_before_replacing_edits(
        app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the composer")
        composer = app.screen
        assert isinstance(composer, ComposeScreen)
        composer.query_one(TextArea).text = "echo my own work"
        await palette_search(pilot, "greet-hosts")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the question")
        assert "Replacethescriptsandparameters" in screen_text(app)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is composer and composer.query_one(TextArea).text == "echo my own work"
        await palette_search(pilot, "greet-hosts")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the question")
        await pilot.press("y")
        await until(pilot, lambda: composer.loaded is not None, "the command loaded")
        assert app.screen is composer
        assert composer.query_one(TextArea).text.startswith('echo "$GREETING')
        # Untouched since: the next one loads without asking.
        await palette_search(pilot, "touch-marker")
        await pilot.press("enter")
        await until(pilot, lambda: composer.loaded is not None
                    and composer.loaded.name == "touch-marker", "the second command")
        assert app.screen is composer and typed_rows(app) == {}


async def test_dangerous_needs_the_machine_count_typed(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        hits = await palette_search(pilot, "touch")
        assert hits[0] == "touch-marker"
        assert "⚠dangerous" in screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                    and app.screen.loaded is not None, "the loaded composer")
        assert "⚠dangerous" in screen_text(app)
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
        confirm = app.screen
        assert isinstance(confirm, ConfirmRun)
        await pilot.pause()
        assert "touch-markerismarkeddangerous:itchangesstateon3machine(s).Type3" \
            in screen_text(app)
        await pilot.press("enter")  # a plain enter does not run it
        await pilot.pause()
        assert app.screen is confirm
        assert "Nothingtyped:type3" in screen_text(app)
        await pilot.press("2", "enter")  # nor a wrong count
        await pilot.pause()
        assert app.screen is confirm
        assert "'2'isnot3" in screen_text(app)
        await pilot.press("3", "enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        assert len(run_screen.session.run.machines) == 3


async def test_the_palette_offers_nothing_to_compose_without_a_machine(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = sandbox_app(tmp_path, monkeypatch, {"greet.toml": GREET})
    async with app.run_test(size=SIZE) as pilot:
        await fleet_screen(pilot, app)
        await pilot.press("slash", *"name:nothing-matches", "enter")
        hits = await palette_search(pilot, "greet")
        assert "greet-hosts" not in hits
        assert isinstance(app.screen, CommandPalette)


async def test_system_commands_stay_beside_saved_ones(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        hits = await palette_search(pilot, "theme")
        assert any("theme" in h.lower() and h != "greet-hosts" for h in hits), hits


async def test_builtins_of_the_fleet_regions_are_in_the_palette_and_load(
        app: FleetrunApp) -> None:
    from core.model import RunApi

    async with app.run_test(size=SIZE) as pilot:
        await mark_web(pilot, app)
        hits = await palette_search(pilot, "ifconfig")
        assert hits[:1] == ["ifconfig"]
        assert "linux·Listnetworkconfiguration·arguments·built-in(actionAPI)" in \
            screen_text(app)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the composer")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        await until(pilot, lambda: bool(typed_rows(app)), "its parameters")
        assert [m.name for m in screen.machines] == ["web-1", "web-2", "web-3"]
        request, problems = screen.build()
        assert request is not None and not [p for p in problems if p.is_error], problems
        commands = {command for _, command in request.assignments}
        assert [(c.builtin, c.api, c.script) for c in commands] == [
            ("ifconfig", RunApi.ACTION, "")]
