"""The compose screen, driven with Pilot on fixed machines (no fleet needed)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from textual.app import App
from textual.widgets import Input, TabbedContent

from core.model import CommandId, Health, HealthStatus, Machine, MachineKind, OsType, Parameter
from core.validate import Limit
from tests.tui.saved_fixtures import until
from tui.keymap import all_binding_ids
from tui.run_request import RunRequest
from tui.screens.compose import ComposeScreen
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.compose.parameter_table import ParameterRow

WEB1 = Machine("vm/web-1", "web-1", MachineKind.VM, OsType.LINUX)
WEB2 = Machine("vm/web-2", "web-2", MachineKind.VM, OsType.LINUX)
DOWN = Machine("vm/db-1", "db-1", MachineKind.VM, OsType.LINUX,
               health=Health(HealthStatus.NOT_READY))
WIN1 = Machine("arc/win-1", "win-1", MachineKind.ARC, OsType.WINDOWS)

CANARY = "Canary-7f3a9c-s3cret"
PASSWORD_CANARY = "Pw-canary-42bd"


class ComposeApp(App[None]):
    """Pushes the compose screen and keeps what it dismissed with."""

    def __init__(self, machines: Sequence[Machine]) -> None:
        super().__init__()
        self.machines = list(machines)
        self.results: list[RunRequest | None] = []

    def on_mount(self) -> None:
        self.push_screen(ComposeScreen(self.machines), self.results.append)


async def type_in(pilot: object, app: ComposeApp, selector: str, text: str) -> None:
    app.screen.query_one(selector).focus()
    await pilot.press(*text)  # type: ignore[attr-defined]


async def write_scripts(pilot: object, app: ComposeApp, *, linux: str, windows: str) -> None:
    """Type the Linux script, switch to the Windows tab and type the Windows script there
    (focus stays in the Windows editor, as a user would leave it)."""
    await type_in(pilot, app, "#script-linux", linux)
    app.screen.query_one(TabbedContent).active = "tab-windows"
    await pilot.pause()  # type: ignore[attr-defined]
    await type_in(pilot, app, "#script-windows", windows)


async def add_parameter(pilot: object, name: str, value: str, *, protected: bool = False
                        ) -> None:
    keys = ["ctrl+n", *name, "tab"] + (["space"] if protected else []) + ["tab", *value]
    await pilot.press(*keys)  # type: ignore[attr-defined]


def screen_text(app: ComposeApp) -> str:
    """Everything on screen (toasts included), whitespace removed: the SVG splits lines
    into styled runs, so only the characters and their order are kept."""
    svg = app.export_screenshot()
    body = svg[svg.index("<g class"):]  # past the embedded stylesheet
    return "".join(html.unescape(re.sub(r"<[^>]+>", "", body)).split())


def shown(text: str, app: ComposeApp) -> bool:
    return "".join(text.split()) in screen_text(app)


async def test_linux_selection_yields_one_shell_command_in_order() -> None:
    app = ComposeApp([WEB1, WEB2])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        assert [p.id for p in app.screen.query(TabbedContent).first().query("TabPane")] == \
            ["tab-linux"]
        await type_in(pilot, app, "#script-linux", "echo $GREETING $1")
        await add_parameter(pilot, "GREETING", "hello")
        await add_parameter(pilot, "", "first")
        await type_in(pilot, app, "#concurrency", "50%")
        await type_in(pilot, app, "#max_errors", "1")
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, ConfirmRun)
        assert shown("2 linux machine(s) will run RunShellScript", app)
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    commands = {id(c): c for _, c in request.assignments}
    [command] = commands.values()
    assert command.command_id is CommandId.SHELL
    assert command.script == "echo $GREETING $1"
    assert command.parameters == (Parameter("GREETING", "hello"), Parameter("", "first"))
    assert command.timeout == 3600
    assert [m for m, _ in request.assignments] == [WEB1, WEB2]
    assert request.options.concurrency == Limit(50, percent=True)
    assert request.options.max_errors == Limit(1)


async def test_mixed_selection_gets_a_command_per_os() -> None:
    app = ComposeApp([WEB1, WIN1, WEB2])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await write_scripts(pilot, app, linux="uptime", windows="Get-Date")
        await pilot.press("ctrl+r")
        assert shown("2 linux machine(s) will run RunShellScript", app)
        assert shown("1 windows machine(s) will run RunPowerShellScript", app)
        await pilot.press("enter")
        await pilot.pause()
    [request] = app.results
    assert request is not None
    got = {m.name: (c.command_id, c.script) for m, c in request.assignments}
    assert got == {"web-1": (CommandId.SHELL, "uptime"), "web-2": (CommandId.SHELL, "uptime"),
                   "win-1": (CommandId.POWERSHELL, "Get-Date")}


async def test_validation_error_blocks_and_names_the_field() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "env")
        await add_parameter(pilot, "NAME", "a")
        await add_parameter(pilot, "NAME", "b")
        await add_parameter(pilot, "BAD-NAME", "c")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: shown("parameter 2 name: error: 'NAME' is already used", app)
                    and shown("parameter 3 name: error: 'BAD-NAME' is not a valid parameter "
                              "name", app), "both errors listed")
        assert isinstance(app.screen, ComposeScreen)
        # Fixing it lets the run through.
        await app.screen.query(ParameterRow).last().remove()
        await app.screen.query(ParameterRow).last().remove()
        await pilot.pause()
        await pilot.press("ctrl+r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")


async def test_bad_option_blocks_and_names_the_field() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "true")
        await type_in(pilot, app, "#concurrency", "lots")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ComposeScreen)
        assert shown("concurrency: error: 'lots' is not a number or percentage", app)


async def test_escape_yields_none_and_confirmation_escape_goes_back() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "true")
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, ConfirmRun)
        await pilot.press("escape")
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press("escape")  # leaves the script editor
        await pilot.press("escape")  # leaves the screen
        await pilot.pause()
    assert app.results == [None]


async def test_secrets_never_shown_but_sent() -> None:
    app = ComposeApp([WEB1, DOWN])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "curl -u admin:$TOKEN example.org")
        await add_parameter(pilot, "TOKEN", CANARY, protected=True)
        await type_in(pilot, app, "#run_as_user", "deploy")
        await type_in(pilot, app, "#run_as_password", PASSWORD_CANARY)
        await pilot.pause()
        assert CANARY not in screen_text(app) and PASSWORD_CANARY not in screen_text(app)
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, ConfirmRun)
        assert shown("TOKEN = *** (protected)", app)
        assert shown("run as: deploy (password ***)", app)
        assert shown("1 machine(s) will be skipped", app)
        assert shown("1 not ready: db-1", app)
        text = screen_text(app)
        assert CANARY not in text and PASSWORD_CANARY not in text
        await pilot.press("enter")
        await pilot.pause()
        assert CANARY not in screen_text(app)
    [request] = app.results
    assert request is not None
    command = request.assignments[0][1]
    assert command.parameters == (Parameter("TOKEN", CANARY, protected=True),)
    assert command.run_as_password == PASSWORD_CANARY
    assert CANARY not in repr(command)


async def test_unprotecting_clears_the_value_instead_of_showing_it() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await add_parameter(pilot, "TOKEN", CANARY, protected=True)
        await pilot.press("shift+tab", "space")  # untick "protected"
        await pilot.pause()
        value = app.screen.query_one(ParameterRow).query_one(".value", Input)
        assert value.value == "" and not value.password
        assert CANARY not in screen_text(app)


async def test_remove_parameter_and_binding_ids() -> None:
    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await add_parameter(pilot, "A", "1")
        await add_parameter(pilot, "B", "2")
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert [r.parameter.name for r in app.screen.query(ParameterRow)] == ["A"]
    ids = all_binding_ids()
    assert {"compose.run", "compose.cancel", "compose.add_parameter",
            "compose.remove_parameter", "compose.confirm_run"} <= set(ids)
    assert len(ids) == len(set(ids))


async def test_ctrl_t_chooses_the_azure_api_the_commands_carry() -> None:
    from core.model import RunApi

    app = ComposeApp([WEB1])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "uptime")
        assert not shown("Azure API", app)  # auto, the default, needs no line
        await pilot.press("ctrl+t", "ctrl+t")
        await pilot.pause()
        assert shown("Azure API action: the action API: no exit code", app)
        await pilot.press("ctrl+r")
        assert isinstance(app.screen, ConfirmRun)
        await pilot.press("enter")
        await pilot.pause()
    request = app.results[-1]
    assert request is not None
    assert [command.api for _, command in request.assignments] == [RunApi.ACTION]
    assert "compose.api" in all_binding_ids()
