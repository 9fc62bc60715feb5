"""Snapshots of the fleet screen and what opens over it, on the built-in sandbox fleet."""

from __future__ import annotations

from pathlib import Path

from textual.pilot import Pilot

from tests.tui.snapshots.harness import (
    ScreenApp,
    SnapCompare,
    sandbox_app,
    settled_fleet,
    steady_cursors,
    until,
)
from tests.tui.test_fleet_health_cache import MACHINES, HeldBackend, backends_of, seeded_cache
from tui.screens.fleet import FleetScreen
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

    def test_fleet_screen_at_80x24_with_cached_health_while_checking(
            self, snap_compare: SnapCompare, tmp_path: Path) -> None:
        """The last check's health with its age at once; the new check still held."""
        backend = HeldBackend()
        cache = seeded_cache(tmp_path / "health.json", hours_ago=2 / 60)  # "2 min ago"

        async def run_before(pilot: Pilot[None]) -> None:
            await until(pilot, lambda: backend.checks == 1, "the health check to start")
            screen = pilot.app.screen
            assert isinstance(screen, FleetScreen)
            await until(pilot, lambda: "checking" in str(screen.query_one("#status").render()),
                        "the checking note")

        assert snap_compare(ScreenApp(lambda: FleetScreen(list(MACHINES), backends_of(backend),
                                                          "sandbox", health_cache=cache)),
                            terminal_size=(80, 24), run_before=run_before)
