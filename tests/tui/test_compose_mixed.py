"""Mixed Linux+Windows selections: an OS without a script is left out (and said so), a
positional parameter goes to Linux only, and each free parameter can be marked per OS."""

from __future__ import annotations

from textual.widgets import Input, TabbedContent

from core.model import CommandId, OsType
from tests.tui.test_compose import (
    WEB1,
    WEB2,
    WIN1,
    ComposeApp,
    add_parameter,
    shown,
    type_in,
    write_scripts,
)
from tests.tui.test_run_screen import until
from tui.screens.compose import ComposeScreen
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.compose.parameter_table import OsButton, ParameterRow, ParameterTable
from tui.widgets.compose.problem_list import ProblemList

SIZE = (140, 40)


async def test_only_a_shell_script_runs_on_linux_and_says_which_windows_are_left_out(
) -> None:
    app = ComposeApp([WEB1, WIN1, WEB2])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "uptime")
        await pilot.pause()
        tab = app.screen.query_one(TabbedContent).get_tab("tab-windows")
        assert "left out" in str(tab.label)
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRun)
        assert shown("⊘ 1 windows machine(s) left out: no PowerShell (RunPowerShellScript) "
                     "script (win-1)", app)
        assert shown("2 linux machine(s) will run RunShellScript", app)
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    assert [(m.name, c.command_id) for m, c in request.assignments] == [
        ("web-1", CommandId.SHELL), ("web-2", CommandId.SHELL)]


async def test_nothing_written_anywhere_still_blocks() -> None:
    app = ComposeApp([WEB1, WIN1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ComposeScreen)
        assert shown("the script is empty", app)


async def test_a_positional_parameter_does_not_block_windows() -> None:
    app = ComposeApp([WEB1, WIN1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await write_scripts(pilot, app, linux="echo $1 $GREETING",
                            windows="param($GREETING) $GREETING")
        await add_parameter(pilot, "", "first")
        await add_parameter(pilot, "GREETING", "hi")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRun), "a positional parameter blocked the run"
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    sent = {m.os: [(p.name, p.value) for p in c.parameters] for m, c in request.assignments}
    assert sent == {OsType.LINUX: [("", "first"), ("GREETING", "hi")],
                    OsType.WINDOWS: [("GREETING", "hi")]}


async def test_a_parameter_marked_for_one_os_goes_only_there() -> None:
    app = ComposeApp([WEB1, WIN1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await write_scripts(pilot, app, linux="env",
                            windows="param($Name) $Name")
        await add_parameter(pilot, "Name", "x")
        await pilot.press("tab")
        assert isinstance(app.focused, OsButton)
        for _ in range(2):  # OS button: both → linux → windows
            await pilot.press("enter")
            await pilot.pause()
        assert app.screen.query_one(ParameterRow).query_one(OsButton).oses == {OsType.WINDOWS}
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    sent = {m.os: [p.name for p in c.parameters] for m, c in request.assignments}
    assert sent == {OsType.LINUX: [], OsType.WINDOWS: ["Name"]}


async def test_problems_update_as_you_type_and_the_table_gets_room() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        table = app.screen.query_one(ParameterTable)
        empty_height = table.outer_size.height
        await type_in(pilot, app, "#script-linux", "env")
        await add_parameter(pilot, "BAD-NAME", "x")
        # No ctrl+r: the list follows the typing once it pauses.
        await until(pilot, lambda: shown("'BAD-NAME' is not a valid parameter name", app),
                    "the problem is listed as typed")
        assert table.outer_size.height >= empty_height + 6  # a row and room for another
        app.screen.query(ParameterRow).last().query_one(".name", Input).focus()
        await pilot.press(*["backspace"] * 4)  # BAD-NAME -> BAD-
        await pilot.press("backspace")
        await until(pilot, lambda: not shown("is not a valid parameter name", app),
                    "the fixed name clears the problem")
        assert isinstance(app.screen, ComposeScreen)


async def test_both_tabs_say_what_they_hold_at_80_columns_in_whole_words() -> None:
    app = ComposeApp([WEB1, WIN1, WEB2])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "uptime")
        tabs = app.screen.query_one(TabbedContent)
        await until(pilot, lambda: "left out" in str(tabs.get_tab("tab-windows").label),
                    "the windows tab says it is left out")
        labels = [str(tabs.get_tab(f"tab-{os}").label) for os in ("linux", "windows")]
        assert labels == ["Shell · 2 linux", "PowerShell · 1 windows · left out"]
        assert sum(len(label) + 2 for label in labels) <= 80  # both whole, side by side
        await pilot.resize_terminal(160, 45)
        await until(pilot, lambda: str(tabs.get_tab("tab-windows").label).startswith("RunPower"),
                    "the full names once there is room")
        assert str(tabs.get_tab("tab-windows").label) == (
            "RunPowerShellScript · 1 windows · no script: left out")


async def test_a_check_that_meets_a_row_being_removed_tries_again_and_the_app_stays() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "env")
        await add_parameter(pilot, "BAD-NAME", "x")
        await until(pilot, lambda: shown("'BAD-NAME' is not a valid parameter name", app),
                    "the problem is listed as typed")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        problems = screen.query_one(ProblemList)
        reads: list[int] = []
        read_form = problems._plan
        problems._plan = lambda: (reads.append(1), read_form())[1]
        row = screen.query(ParameterRow).last()
        # Mid-removal a row has lost its fields (they go first): the check meets that state.
        await row.query_one(OsButton).remove()
        problems.recheck_soon()
        await until(pilot, lambda: len(reads) >= 2, "the check read the form again")
        assert app.is_running and screen.checking  # it keeps trying while the row is half gone
        await row.remove()
        await until(pilot, lambda: not screen.checking
                    and not shown("is not a valid parameter name", app),
                    "the check after the removal clears the problem")
        assert app.is_running and app.screen is screen
