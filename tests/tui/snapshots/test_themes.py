"""The fleet screen under one of fleetrun's own themes, chosen in config.toml."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets.data_table import ColumnKey

from core import config
from tests.tui.snapshots.harness import (
    SnapCompare,
    sandbox_app,
    settled_fleet,
    steady_cursors,
    until,
)
from tui.widgets.fleet.machine_table import MachineTable

SIZE = (150, 34)


class TestThemes:
    def test_fleet_screen_in_the_colourblind_theme(self, snap_compare: SnapCompare) -> None:
        """theme = "fleetrun-colorblind": health in blue, vermilion and yellow, with glyphs."""
        (config.config_dir() / "config.toml").write_text('theme = "fleetrun-colorblind"\n')
        app = sandbox_app()

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await settled_fleet(pilot)
            # A DataTable widens its columns for new rows on a later idle: under load the
            # screenshot could come first, with the agent versions cut short.
            table = screen.query_one(MachineTable)
            longest = max(len(m.health.agent_version or "") for m in screen.machines)
            await until(pilot, lambda: table.columns[ColumnKey("agent")].content_width
                        >= longest, "the agent column as wide as its longest version")
            await steady_cursors(pilot)
            assert app.theme == "fleetrun-colorblind"

        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
