"""The composer and a script past the 256 KiB inline limit: it passes where the fleet's
backend uploads it (Azure with `fleetrun azure setup-output` done), and is refused, naming
setup-output, where it does not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.app import App

from core.model import Machine, MachineKind, OsType
from core.validate import MAX_SCRIPT_BYTES
from tests.tui.saved_fixtures import until
from tests.tui.test_compose import screen_text
from tui.run_request import RunRequest
from tui.screens.compose import ComposeScreen
from tui.widgets.compose.confirm_run import ConfirmRun

VM = Machine("vm/web-1", "web-1", MachineKind.VM, OsType.LINUX)
ARC = Machine("arc/stg-1", "stg-1", MachineKind.ARC, OsType.LINUX)
BIG = "echo start\n" + "# " + "p" * (MAX_SCRIPT_BYTES + 1024) + "\necho end\n"


@dataclass
class Uploading:
    """A backend as the composer asks it: does it pass a big script by URI?"""

    uploads_scripts: bool


class Backends:
    def __init__(self, uploads: bool) -> None:
        self.backend = Uploading(uploads)

    def for_machine(self, machine: Machine) -> Uploading:
        return self.backend


@dataclass
class FakeFleet:
    backends: Backends


class FleetComposeApp(App[None]):
    """The compose screen on an app whose fleet's backends upload big scripts, or not."""

    def __init__(self, machines: Sequence[Machine], *, uploads: bool) -> None:
        super().__init__()
        self.machines = list(machines)
        self.fleet = FakeFleet(Backends(uploads))
        self.results: list[RunRequest | None] = []

    def on_mount(self) -> None:
        self.push_screen(ComposeScreen(self.machines), self.results.append)


async def compose_big(uploads: bool) -> FleetComposeApp:
    app = FleetComposeApp([VM, ARC], uploads=uploads)
    async with app.run_test(size=(120, 40)) as pilot:
        # Conditions, not single pauses: on a loaded machine a step can take longer.
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the compose screen")
        screen = app.screen
        assert isinstance(screen, ComposeScreen)
        screen.editor(OsType.LINUX).text = BIG
        await pilot.pause()
        await pilot.press("ctrl+r")
        if uploads:
            await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
            await pilot.press("enter")
            await until(pilot, lambda: bool(app.results), "the run requested")
            assert app.results[0] is not None
            assert {c.script for _, c in app.results[0].assignments} == {BIG}
        else:
            await until(pilot, lambda: "fleetrunazuresetup-output" in screen_text(app),  # type: ignore[arg-type]
                        "the refusal naming setup-output")
            assert isinstance(app.screen, ComposeScreen)
            text = screen_text(app)  # type: ignore[arg-type]
            assert "limitforaninlinescriptis262,144bytes" in text
            assert not app.results
    return app


async def test_with_output_storage_a_big_script_passes_to_the_run() -> None:
    await compose_big(uploads=True)


async def test_without_output_storage_a_big_script_is_refused_naming_setup_output() -> None:
    await compose_big(uploads=False)
