"""The key sheet (``?``), driven with Pilot on the fleet screen of a small sandbox fleet."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.text import Text
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import DataTable

from tests.tui.test_fleet_screen import FLEET, fleet_screen
from tui import keymap
from tui.app import FleetrunApp
from tui.screens.fleet import FleetScreen
from tui.screens.key_sheet import KeySheet
from tui.widgets.fleet.machine_table import MachineTable

SIZE = (150, 40)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    return tmp_path / "config"


@pytest.fixture
async def app(tmp_path: Path, config_dir: Path) -> AsyncIterator[FleetrunApp]:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    yield FleetrunApp([f"sandbox:{path}"])


async def settled_fleet_screen(pilot: Pilot[None], app: FleetrunApp) -> FleetScreen:
    """The fleet screen once the health check it starts on opening has ended."""
    screen = await fleet_screen(pilot, app)
    for _ in range(200):
        checking = any(w.group == "health" and not w.is_finished for w in app.workers)
        if not checking and any(m.health.checked_at for m in screen.machines):
            await pilot.pause()
            return screen
        await pilot.pause(0.05)
    raise AssertionError("the health check on opening never ended")


def screen_text(app: App[None]) -> str:
    """What the terminal shows, whitespace removed (the SVG splits lines into runs)."""
    svg = app.export_screenshot()
    body = svg[svg.index("<g class"):]
    return "".join(html.unescape(re.sub(r"<[^>]+>", "", body)).split())


async def everything_shown_while_scrolling(pilot: Pilot[None], sheet: KeySheet) -> str:
    """The screen's text from the sheet's top to its last row, a page at a time."""
    table = sheet.query_one(DataTable)
    seen = screen_text(pilot.app)
    for _ in range(table.row_count):
        if table.cursor_row == table.row_count - 1:
            return seen
        await pilot.press("pagedown")
        seen += screen_text(pilot.app)
    raise AssertionError("page down never reached the last row")


def row_text(sheet: KeySheet, binding_id: str) -> list[str]:
    cells = sheet.query_one(DataTable).get_row(binding_id)
    return [c.plain if isinstance(c, Text) else str(c) for c in cells]


async def test_question_mark_lists_every_binding_the_fleet_screen_first(
        app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settled_fleet_screen(pilot, app)
        await pilot.press("question_mark")
        sheet = app.screen
        assert isinstance(sheet, KeySheet)
        top = screen_text(app)
        assert "Fleet(thisscreen)" in top and "App(everywhere)" in top
        assert [c.name for c in sheet.contexts[:2]] == ["FLEET", "APP"]
        assert row_text(sheet, "fleet.mark")[:2] == ["space", "Mark · Mark or unmark this machine"]
        assert row_text(sheet, "fleet.filter")[0] == "/"
        shown = await everything_shown_while_scrolling(pilot, sheet)
        for binding_id in keymap.all_binding_ids():
            assert binding_id in shown, f"{binding_id} is not on the key sheet"
        # ? again closes it, and so do esc and q.
        for close in ("question_mark", "escape", "q"):
            await pilot.press(close)
            assert isinstance(app.screen, FleetScreen), close
            await pilot.press("question_mark")
            assert isinstance(app.screen, KeySheet)


async def test_a_remapped_key_is_shown_as_the_user_presses_it(
        app: FleetrunApp, config_dir: Path) -> None:
    (config_dir / "config.toml").write_text('[keymap]\n"fleet.mark" = "m"\n"app.help" = "f2"\n')
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled_fleet_screen(pilot, app)
        await pilot.press("question_mark")
        assert app.screen is screen  # ? is no longer the key
        await pilot.press("f2")
        sheet = app.screen
        assert isinstance(sheet, KeySheet)
        assert row_text(sheet, "fleet.mark")[0] == "m (default space)"
        assert row_text(sheet, "app.help")[0] == "f2 (default ?  f1)"
        assert row_text(sheet, "fleet.filter")[0] == "/"  # not remapped: as declared
        assert "m(defaultspace)" in screen_text(app)
        await pilot.press("f2")  # the help key, whatever it is, closes the sheet too
        assert app.screen is screen
        await pilot.press("m")  # and the sheet told the truth
        assert len(screen.query_one(MachineTable).marked) == 1
