"""NO_COLOR (no-color.org): set and not empty, the app draws no colour, and every state
still reads by its glyph; the fleet screen, and the run screen's own line-rendered table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from core.fanout import FanoutOptions
from core.model import Command, CommandId
from tests.tui.svg_colours import drawn_colours, is_grey, screen_text
from tests.tui.test_fleet_screen import FLEET
from tests.tui.test_key_sheet import settled_fleet_screen
from tui.app import FleetrunApp
from tui.screens.run import RunScreen

SIZE = (140, 30)


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


async def screenshots(tmp_path: Path) -> tuple[str, str]:
    """The fleet screen (health checked) and the run screen after a run that succeeded on
    one machine and failed on another, as SVG screenshots."""
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    app = FleetrunApp([f"sandbox:{path}"])
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled_fleet_screen(pilot, app)
        await pilot.pause(0.2)
        fleet = app.export_screenshot()
        web = [m for m in screen.machines if m.name in ("web-1", "web-2")]
        app.start_run([(web[0], Command(CommandId.SHELL, "true", timeout=0)),
                       (web[1], Command(CommandId.SHELL, "exit 3", timeout=0))],
                      FanoutOptions())
        await until(pilot, lambda: isinstance(app.screen, RunScreen)
                    and app.screen.session.run.finished, "the run's end")
        await pilot.pause(0.6)  # the table's next redraw
        return fleet, app.export_screenshot()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def assert_glyphs_shown(fleet: str, run: str) -> None:
    fleet_text, run_text = screen_text(fleet), screen_text(run)
    assert "✓ Ready" in fleet_text and "✗ NotReady" in fleet_text
    assert "✓ Succeeded" in run_text and "✗ Failed" in run_text


@pytest.mark.parametrize("theme", ["textual-dark", "fleetrun-colorblind"])
async def test_no_color_draws_in_greys_only_and_states_keep_their_glyphs(
        home: Path, monkeypatch: pytest.MonkeyPatch, theme: str) -> None:
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text(f'theme = "{theme}"\n')
    monkeypatch.setenv("NO_COLOR", "1")
    fleet, run = await screenshots(home)
    for shot in (fleet, run):
        colours = drawn_colours(shot)
        assert colours and all(is_grey(c) for c in colours), (
            sorted(c for c in colours if not is_grey(c)), screen_text(shot))
    assert_glyphs_shown(fleet, run)


async def test_without_no_color_or_with_it_empty_there_is_colour(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail; and an empty NO_COLOR asks for nothing (no-color.org)."""
    monkeypatch.setenv("NO_COLOR", "")
    fleet, run = await screenshots(home)
    for shot in (fleet, run):
        assert not all(is_grey(c) for c in drawn_colours(shot))
    assert_glyphs_shown(fleet, run)
