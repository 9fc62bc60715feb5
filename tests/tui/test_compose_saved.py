"""A saved command loaded into the composer, on fixed machines (no fleet needed): one script
per OS tab, an OS without a script said on its tab and left out of the run, typed rows."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input, Static, TabbedContent

from core.library import CommandParameter, SavedCommand
from core.model import CommandId, Machine, OsType, Parameter
from tests.tui.saved_fixtures import screen_text, until
from tests.tui.test_compose import WEB1, WEB2, WIN1
from tui.run_request import RunRequest
from tui.screens.compose import ComposeScreen
from tui.screens.save_command import SaveCommandDialog
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.compose.typed_parameter import TypedParameterRow

SIZE = (150, 42)

LINUX_ONLY = SavedCommand(
    name="uptime-check", description="How long since boot", tags=("triage",),
    scripts={CommandId.SHELL: "uptime -p\n"},
    parameters=(CommandParameter("UNIT", default="days", choices=("days", "hours")),),
    timeout=120)

BOTH = SavedCommand(
    name="both-oses", scripts={CommandId.SHELL: "echo $WHO\n",
                               CommandId.POWERSHELL: "param([string]$WHO)\n$WHO\n"},
    parameters=(CommandParameter("WHO", default="me"),))


class SavedComposeApp(App[None]):
    """Pushes the composer with a saved command loaded; keeps what it dismissed with."""

    def __init__(self, machines: Sequence[Machine], saved: SavedCommand) -> None:
        super().__init__()
        self.machines = list(machines)
        self.saved = saved
        self.results: list[RunRequest | None] = []

    def on_mount(self) -> None:
        self.push_screen(ComposeScreen(self.machines, self.saved), self.results.append)


async def loaded(pilot: object, app: SavedComposeApp) -> ComposeScreen:
    await until(pilot, lambda: isinstance(app.screen, ComposeScreen)  # type: ignore[arg-type]
                and app.screen.loaded is not None, "the loaded composer")
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    return screen


async def test_an_os_without_a_script_is_said_on_its_tab_and_left_out() -> None:
    app = SavedComposeApp([WEB1, WIN1, WEB2], LINUX_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        assert screen.editor(OsType.LINUX).text == "uptime -p\n"
        tabs = screen.query_one(TabbedContent)
        assert tabs.get_tab("tab-windows").label.plain == \
            "RunPowerShellScript · 1 windows · no script: left out"
        tabs.active = "tab-windows"
        await pilot.pause()
        notice = str(screen.query_one("#missing-windows", Static).content)
        assert notice == ("⊘ uptime-check has no PowerShell (RunPowerShellScript) script: the "
                          "1 windows machine(s) are left out of the run. Write a script here "
                          "to run them too.")
        assert screen.query_one("#timeout", Input).value == "120"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
        assert "⊘1windowsmachine(s)leftout:uptime-checkhasnoPowerShell" in screen_text(app)
        assert "2linuxmachine(s)willrunRunShellScript" in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    assert [m.name for m, _ in request.assignments] == ["web-1", "web-2"]
    command = request.assignments[0][1]
    assert (command.script, command.parameters, command.timeout) == (
        "uptime -p\n", (Parameter("UNIT", "days"),), 120)


async def test_a_script_written_on_that_tab_brings_its_machines_back() -> None:
    app = SavedComposeApp([WEB1, WIN1], LINUX_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        screen.editor(OsType.WINDOWS).text = "(Get-CimInstance Win32_OperatingSystem).LastBootUp"
        await pilot.pause()
        assert not screen.query_one("#missing-windows", Static).has_class("-shown")
        assert "no script" not in screen.query_one(TabbedContent).get_tab("tab-windows").label.plain
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
        assert "leftout" not in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    assert {m.name: c.command_id for m, c in request.assignments} == {
        "web-1": CommandId.SHELL, "win-1": CommandId.POWERSHELL}


async def test_no_script_for_any_selected_machine_blocks_the_run() -> None:
    app = SavedComposeApp([WIN1], LINUX_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert app.screen is screen
        assert ("script:error:uptime-checkhasnoPowerShell(RunPowerShellScript)scriptforthe"
                "selectedmachines") in screen_text(app)


async def test_a_typed_row_is_not_removed_but_cleared() -> None:
    app = SavedComposeApp([WEB1], LINUX_ONLY)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        screen.query_one(TypedParameterRow).query_one(Input).focus()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert len(screen.query(TypedParameterRow)) == 1
        assert any("UNIT is a parameter of the saved command" in str(n.message)
                   for n in app._notifications)


async def test_saving_keeps_the_script_of_an_os_not_selected(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    app = SavedComposeApp([WEB1], BOTH)
    async with app.run_test(size=SIZE) as pilot:
        screen = await loaded(pilot, app)
        screen.editor(OsType.LINUX).text = "echo $WHO, again\n"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SaveCommandDialog), "the dialog")
        app.screen.query_one("#save-name", Input).value = "both-again"
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen, "saved")
    doc = tomllib.loads((tmp_path / "config" / "commands" / "both-again.toml").read_text())
    assert doc["scripts"] == {"shell": "echo $WHO, again\n",
                              "powershell": "param([string]$WHO)\n$WHO\n"}
    assert doc["parameters"] == [{"name": "WHO", "default": "me"}]
