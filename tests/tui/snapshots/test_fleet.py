"""Snapshots of the fleet screen and what opens over it, on the built-in sandbox fleet."""

from __future__ import annotations

from textual.pilot import Pilot

from tests.tui.snapshots.harness import SnapCompare, sandbox_app, settled_fleet, steady_cursors
from tui.screens.key_sheet import KeySheet
from tui.widgets.fleet.machine_details import MachineDetails

SIZE = (150, 34)


class TestFleet:
    def test_fleet_screen_after_the_health_check(self, snap_compare: SnapCompare) -> None:
        """Every machine of the default sandbox fleet with its checked health."""

        async def run_before(pilot: Pilot[None]) -> None:
            await settled_fleet(pilot)
            await steady_cursors(pilot)

        assert snap_compare(sandbox_app(), terminal_size=SIZE, run_before=run_before)

    def test_machine_details(self, snap_compare: SnapCompare) -> None:
        """enter on a machine whose Arc agent is too old to run commands."""

        async def run_before(pilot: Pilot[None]) -> None:
            await settled_fleet(pilot)
            await pilot.press("slash", *"name:onprem-legacy-01", "enter", "enter")
            assert isinstance(pilot.app.screen, MachineDetails)
            await steady_cursors(pilot)

        assert snap_compare(sandbox_app(), terminal_size=SIZE, run_before=run_before)

    def test_key_sheet_over_the_fleet_screen(self, snap_compare: SnapCompare) -> None:
        """? lists every key, the fleet screen's first."""

        async def run_before(pilot: Pilot[None]) -> None:
            await settled_fleet(pilot)
            await pilot.press("question_mark")
            assert isinstance(pilot.app.screen, KeySheet)

        assert snap_compare(sandbox_app(), terminal_size=SIZE, run_before=run_before)
