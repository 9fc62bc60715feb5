"""Small apps and helpers the snapshot tests drive each screen with, at fixed times."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input, Static, TextArea

from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.model import (
    Command,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    MachineKind,
    OsType,
    RunState,
    Stream,
)
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.fleet import FleetScreen

NOW = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
"""The instant every snapshot is taken at."""

SnapCompare = Callable[..., bool]
"""pytest-textual-snapshot's ``snap_compare`` fixture: app, press, terminal_size, run_before."""


async def steady_cursors(pilot: Pilot[None]) -> None:
    """Stop every text cursor blinking (shown steadily where focused): a blink is a coin toss."""
    for widget in pilot.app.screen.query("Input, TextArea"):
        if isinstance(widget, Input | TextArea):
            widget.cursor_blink = False
    await pilot.pause()


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await pilot.pause(0.025)
    raise AssertionError(f"timed out waiting for: {what}")


# -- the fleet screen, on the built-in sandbox fleet -------------------------------------------


TOAST_SECONDS = 600
"""Toasts expire on a monotonic timer: kept up, a toast is on every run's screenshot or none."""


def sandbox_app() -> FleetrunApp:
    """The app as ``fleetrun`` opens it with nothing configured: the default sandbox fleet."""
    app = FleetrunApp()
    app.NOTIFICATION_TIMEOUT = TOAST_SECONDS
    return app


async def settled_fleet(pilot: Pilot[None]) -> FleetScreen:
    """The fleet screen once the health check it starts on opening has ended."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, FleetScreen), "the fleet screen")
    screen = app.screen
    assert isinstance(screen, FleetScreen)
    await until(pilot, lambda: not any(w.group == "health" and not w.is_finished
                                       for w in app.workers)
                and any(m.health.checked_at for m in screen.machines), "the health check")
    await pilot.pause()
    return screen


# -- single screens, in a bare app -----------------------------------------------------------


class ScreenApp(App[None]):
    """An app that opens on one screen, titled as fleetrun is."""

    TITLE = "fleetrun"
    NOTIFICATION_TIMEOUT = TOAST_SECONDS

    def __init__(self, make_screen: Callable[[], Screen[Any]]) -> None:
        super().__init__()
        self._make_screen = make_screen

    def compose(self) -> ComposeResult:
        yield Static("")

    def on_mount(self) -> None:
        self.push_screen(self._make_screen())


def machine(name: str, os_type: OsType = OsType.LINUX, *, kind: MachineKind = MachineKind.VM,
            health: HealthStatus = HealthStatus.READY) -> Machine:
    return Machine(f"{kind}/{name}", name, kind, os_type, location="westeurope",
                   health=Health(health, checked_at=NOW))


WEB1 = machine("web-01")
WEB2 = machine("web-02")
DB1 = machine("db-01", health=HealthStatus.NOT_READY)
WIN1 = machine("win-app-01", OsType.WINDOWS, kind=MachineKind.ARC)


def compose_app(machines: Sequence[Machine]) -> ScreenApp:
    return ScreenApp(lambda: ComposeScreen(machines))


# -- a scripted run with fixed times ----------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """What one machine does in a scripted run: its output, exit code and times."""

    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int | None = 0
    state: RunState = RunState.SUCCEEDED
    started_after: float = 0.0
    seconds: float = 1.0
    error: str = ""


class ScriptedBackend:
    """Plays each machine's :class:`Script`, stamped with times relative to :data:`NOW`."""

    def __init__(self, scripts: dict[MachineId, Script]) -> None:
        self.scripts = scripts

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: m.health for m in machines}

    async def run(self, machine: Machine, command: Command, *, run_id: str
                  ) -> AsyncIterator[MachineEvent]:
        script = self.scripts[machine.id]
        started = NOW + timedelta(seconds=script.started_after)
        yield StateChanged(machine.id, RunState.RUNNING, at=started)
        for stream, data in ((Stream.STDOUT, script.stdout), (Stream.STDERR, script.stderr)):
            if data:
                yield OutputAppended(machine.id, stream, 0, data)
            yield TailUpdated(machine.id, stream, data[-4096:])
        yield Finished(machine.id, script.state, script.exit_code, started,
                       started + timedelta(seconds=script.seconds), script.error)

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None
