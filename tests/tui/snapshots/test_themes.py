"""The fleet screen under one of fleetrun's own themes, chosen in config.toml."""

from __future__ import annotations

from textual.pilot import Pilot

from core import config
from tests.tui.snapshots.harness import (
    SnapCompare,
    sandbox_app,
    settled_fleet,
    steady_cursors,
)

SIZE = (150, 34)


class TestThemes:
    def test_fleet_screen_in_the_colourblind_theme(self, snap_compare: SnapCompare) -> None:
        """theme = "fleetrun-colorblind": health in blue, vermilion and yellow, with glyphs."""
        (config.config_dir() / "config.toml").write_text('theme = "fleetrun-colorblind"\n')
        app = sandbox_app()

        async def run_before(pilot: Pilot[None]) -> None:
            await settled_fleet(pilot)
            await steady_cursors(pilot)
            assert app.theme == "fleetrun-colorblind"

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
