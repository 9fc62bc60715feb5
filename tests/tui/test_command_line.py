"""The ``:`` command line on the sandbox: :target, :theme, :history, :run, :rerun failed,
completion, and mistakes shown with what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static, TextArea

from core.model import RunState
from tests.tui.saved_fixtures import GREET, sandbox_app, typed_rows, until
from tests.tui.test_fleet_screen import fleet_screen
from tui.app import FleetrunApp
from tui.screens.command_line import CommandLine
from tui.screens.compose import ComposeScreen
from tui.screens.fleet import FleetScreen
from tui.screens.history import HistoryScreen
from tui.screens.run import RunScreen
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.fleet.machine_table import MachineTable

SIZE = (160, 45)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FleetrunApp:
    return sandbox_app(tmp_path, monkeypatch, {"greet.toml": GREET})


async def open_line(pilot: Pilot[None]) -> CommandLine:
    await pilot.press("colon")
    await until(pilot, lambda: isinstance(pilot.app.screen, CommandLine), "the command line")
    line = pilot.app.screen
    assert isinstance(line, CommandLine)
    return line


async def command(pilot: Pilot[None], text: str) -> CommandLine:
    """Type ``:text`` and enter; the command line (closed, unless the command was refused)."""
    line = await open_line(pilot)
    await pilot.press(*text, "enter")
    await pilot.pause()
    return line


def hint(line: CommandLine) -> str:
    return str(line.query_one("#command-hint", Static).content)


def shown_names(screen: FleetScreen) -> list[str]:
    return [m.name for m in screen.query_one(MachineTable).shown]


async def test_target_filters_the_fleet_and_a_bad_query_stays_open(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        fleet = await fleet_screen(pilot, app)
        await command(pilot, "target tag:role=web")
        assert app.screen is fleet
        assert shown_names(fleet) == ["web-1", "web-2", "web-3"]
        assert "filter: tag:role=web" in str(fleet.query_one("#status", Static).content)
        line = await command(pilot, "target os:plan9")
        assert app.screen is line  # refused: still open, with what os takes
        assert "plan9" in hint(line) and "linux" in hint(line) and "windows" in hint(line)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is fleet and shown_names(fleet) == ["web-1", "web-2", "web-3"]
        await command(pilot, "target")  # nothing: every machine
        assert len(shown_names(fleet)) == 5


async def test_history_then_target_goes_back_to_the_fleet(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        fleet = await fleet_screen(pilot, app)
        await command(pilot, "history")
        await until(pilot, lambda: isinstance(app.screen, HistoryScreen), "history")
        await command(pilot, "target name:web-2")
        await until(pilot, lambda: app.screen is fleet, "the fleet screen")
        assert shown_names(fleet) == ["web-2"]


async def test_theme_switches_and_an_unknown_one_lists_the_themes(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await fleet_screen(pilot, app)
        await command(pilot, "theme fleetrun-light")
        assert app.theme == "fleetrun-light"
        line = await command(pilot, "theme solarised-ish")
        assert app.screen is line
        assert hint(line).startswith("No theme 'solarised-ish'")
        assert "The themes are: fleetrun-colorblind, fleetrun-dark" in hint(line)
        assert app.theme == "fleetrun-light"


async def test_unknown_command_lists_the_commands_and_esc_closes(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        fleet = await fleet_screen(pilot, app)
        line = await command(pilot, "hsitory")
        assert app.screen is line
        assert hint(line) == ("Unknown command :hsitory; did you mean history? The commands "
                              "are: :run NAME · :target QUERY · :rerun failed · :history · "
                              ":theme NAME")
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is fleet


async def test_tab_completes_commands_and_names(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await fleet_screen(pilot, app)
        line = await open_line(pilot)
        box = line.query_one(Input)
        await pilot.press("t", "h", "tab")
        assert box.value == "theme "
        await pilot.press(*"fleetrun-l", "tab")
        assert box.value == "theme fleetrun-light"
        box.value = ""
        await pilot.press(*"run gre", "tab")
        assert box.value == "run greet-hosts"
        box.value = ""
        await pilot.press(*"run ")
        await pilot.pause()
        assert "greet-hosts" in hint(line) and "disk-usage" in hint(line)


async def test_run_opens_the_composer_with_the_saved_command(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await fleet_screen(pilot, app)
        await pilot.press("slash", *"tag:role=web", "enter", "a")
        line = await command(pilot, "run greet-host")
        assert app.screen is line
        assert hint(line) == ("No saved command 'greet-host'; did you mean greet-hosts? (tab "
                              "completes; ctrl+p searches them)")
        await pilot.press("s", "enter")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                    and app.screen.loaded is not None, "the loaded composer")
        composer = app.screen
        assert isinstance(composer, ComposeScreen)
        assert [m.name for m in composer.machines] == ["web-1", "web-2", "web-3"]
        assert list(typed_rows(app)) == ["GREETING", "TOKEN", "COUNT"]
        # The composer's text fields take ':' as typed: no command line there.
        composer.query_one(TextArea).focus()
        await pilot.press("colon")
        await pilot.pause()
        assert app.screen is composer
        assert composer.query_one(TextArea).text.startswith(":")


async def run_failing(pilot: Pilot[None], app: FleetrunApp) -> RunScreen:
    """web-1 succeeds and web-2 fails: the run screen once the run has ended."""
    await fleet_screen(pilot, app)
    await pilot.press("slash", *"name:web-1,web-2", "enter", "a", "c")
    await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the composer")
    app.screen.query_one(TextArea).text = '[ "$HOSTNAME" = web-1 ] || exit 3'
    await pilot.press("ctrl+r")
    await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
    screen = app.screen
    assert isinstance(screen, RunScreen)
    await until(pilot, lambda: screen.session.run.finished, "the run's end")
    return screen


async def test_rerun_failed_on_the_run_screen_and_elsewhere(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await fleet_screen(pilot, app)
        line = await command(pilot, "rerun failed")
        assert app.screen is line and hint(line).startswith("No run yet in this session")
        await pilot.press("escape")
        first = await run_failing(pilot, app)
        await command(pilot, "rerun failed")
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and app.screen is not first,
                    "the rerun")
        rerun = app.screen
        assert isinstance(rerun, RunScreen)
        assert rerun.session.run.parent_run_id == first.session.run.run_id
        assert [mr.machine.name for mr in rerun.session.run.machines.values()] == ["web-2"]
        await until(pilot, lambda: rerun.session.run.finished, "the rerun's end")
        # Back on the first run's screen: that run's, not the last one started.
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is first, "the first run's screen")
        await command(pilot, "rerun failed")
        await until(pilot, lambda: isinstance(app.screen, RunScreen)
                    and app.screen not in (first, rerun), "the rerun of the first run")
        third = app.screen
        assert isinstance(third, RunScreen)
        assert third.session.run.parent_run_id == first.session.run.run_id
        await until(pilot, lambda: third.session.run.finished, "its end")
        last = third.session.run
        # From the fleet screen: the last run of the session.
        while not isinstance(app.screen, FleetScreen):
            await pilot.press("escape")
            await pilot.pause()
        await command(pilot, "rerun failed")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "the second rerun")
        again = app.screen
        assert isinstance(again, RunScreen)
        assert again.session.run.parent_run_id == last.run_id
        [machine] = again.session.run.machines.values()
        await until(pilot, lambda: again.session.run.finished, "its end")
        assert (machine.machine.name, machine.state) == ("web-2", RunState.FAILED)
