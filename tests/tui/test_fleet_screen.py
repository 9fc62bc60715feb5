"""The fleet screen, driven with Textual's Pilot on a small sandbox fleet."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input

from core.fleet import FleetOptions
from core.model import HealthStatus
from tui.app import FleetrunApp
from tui.screens.fleet import FleetScreen
from tui.widgets.fleet.machine_details import MachineDetails
from tui.widgets.fleet.machine_table import MARK, MachineTable

FLEET = """
[sandbox]
flush_interval = "0.2s"

[defaults]
subscription = "55555555-5555-4555-8555-555555555555"
resource_group = "rg-tui"
location = "westeurope"

[[machines]]
name = "web-{n}"
count = 3
kind = "vm"
os = "linux"
tags = { role = "web" }

[[machines]]
name = "db-1"
kind = "vm"
os = "linux"
agent = "not-ready"
tags = { role = "db" }

[[machines]]
name = "win-1"
kind = "arc"
os = "windows"
agent_version = "1.45.02800.0"
"""


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FleetrunApp]:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    yield FleetrunApp([f"sandbox:{path}"], FleetOptions())


async def fleet_screen(pilot: object, app: FleetrunApp) -> FleetScreen:
    """The fleet screen once it is ready for keys (its table has focus: mounted)."""
    for _ in range(200):
        if isinstance(app.screen, FleetScreen) and isinstance(app.focused, MachineTable):
            return app.screen
        await pilot.pause(0.05)  # type: ignore[attr-defined]
    raise AssertionError("the fleet screen did not open")


async def test_filter_marks_and_status(app: FleetrunApp) -> None:
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await fleet_screen(pilot, app)
        table = screen.query_one(MachineTable)
        assert sorted(m.name for m in table.shown) == ["db-1", "web-1", "web-2", "web-3", "win-1"]
        await pilot.press("slash", *"tag:role=web", "enter")
        assert sorted(m.name for m in table.shown) == ["web-1", "web-2", "web-3"]
        await pilot.press("space")
        assert len(table.marked) == 1
        await pilot.press("a")
        assert len(table.marked) == 3
        await pilot.press("asterisk")
        assert table.marked == frozenset()
        await pilot.press("a", "escape")  # esc clears the filter; marks stay
        assert len(table.shown) == 5 and len(table.marked) == 3
        status = str(screen.query_one("#status").render())
        assert "5 machines · 5 shown · 3 marked" in status
        marked_cells = [table.get_cell(m.id, "mark") for m in table.shown]
        assert marked_cells.count(MARK) == 3


async def test_a_bad_filter_says_why_and_keeps_the_view(app: FleetrunApp) -> None:
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await fleet_screen(pilot, app)
        table = screen.query_one(MachineTable)
        await pilot.press("slash")
        box = screen.query_one("#filter", Input)
        box.value = "tag:role=web"  # as pasted: one change each
        await pilot.pause()
        box.value = "tag:role=web health:purple"
        await pilot.pause()
        status = str(screen.query_one("#status").render())
        assert "purple" in status  # the error names what is wrong
        assert len(table.shown) == 3  # the last query that parsed still shows


async def test_health_is_checked_and_details_open(app: FleetrunApp) -> None:
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await fleet_screen(pilot, app)
        for _ in range(100):  # the health check on open runs in a worker
            health = {m.name: m.health.status for m in screen.machines}
            if health["db-1"] is not HealthStatus.UNKNOWN:
                break
            await pilot.pause(0.05)
        assert health["db-1"] is HealthStatus.NOT_READY
        assert health["web-1"] is HealthStatus.READY
        await pilot.press("slash", *"name:db-1", "enter", "enter")
        assert isinstance(app.screen, MachineDetails)
        assert app.screen.machine.name == "db-1"
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_an_idle_fleet_screen_sends_the_terminal_nothing(
        app: FleetrunApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing changes, so nothing is drawn: a screen that repaints itself anyway costs a
    1,000-machine table's worth of CPU and of terminal bandwidth (over ssh) every frame.
    The app's opening spinner, still animating under the fleet screen, used to make Textual
    repaint the whole fleet screen 16 times a second."""
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await fleet_screen(pilot, app)
        for _ in range(200):  # the health check on open, and its redraw
            if "checking health" not in str(screen.query_one("#status").render()):
                break
            await pilot.pause(0.05)
        await pilot.pause()
        frames: list[object] = []
        display = app._display

        def counting(screen: object, renderable: object) -> None:
            if renderable is not None:
                frames.append(renderable)
            display(screen, renderable)  # type: ignore[arg-type]

        monkeypatch.setattr(app, "_display", counting)
        await asyncio.sleep(1.5)  # what is measured is nothing happening: wall time it is
        assert len(frames) <= 2, f"{len(frames)} frames drawn in 1.5 s on an idle fleet screen"


def type_fast(app: FleetrunApp, text: str) -> None:
    """Keys as a terminal delivers a fast typist's or a paste's: all queued before the app
    handles the first (the pilot's press waits for each key's handling)."""
    for character in text:
        key = "slash" if character == "/" else character
        app.post_message(events.Key(key, character))


async def test_keys_typed_right_after_slash_go_into_the_filter(app: FleetrunApp) -> None:
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await fleet_screen(pilot, app)
        box = screen.query_one("#filter", Input)
        # c composes and a marks all on the table: they must reach the box instead.
        type_fast(app, "/name:ca/t")
        for _ in range(200):
            if box.value == "name:ca/t":
                break
            await pilot.pause(0.02)
        assert box.value == "name:ca/t", "a key typed after / reached the table"
        assert app.screen is screen and not screen.query_one(MachineTable).marked
