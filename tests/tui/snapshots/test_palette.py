"""The command palette over the fleet screen, searching the saved commands."""

from __future__ import annotations

from textual.command import Command as PaletteCommand
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from tests.tui.snapshots.harness import (
    SnapCompare,
    sandbox_app,
    settled_fleet,
    steady_cursors,
    until,
)

SIZE = (150, 34)


class TestPalette:
    def test_palette_finds_saved_commands(self, snap_compare: SnapCompare) -> None:
        """ctrl+p, "service": the starter commands whose name or tags match, each with its
        description, OSes and tags; restart-service marked dangerous."""

        async def run_before(pilot: Pilot[None]) -> None:
            await settled_fleet(pilot)
            await pilot.press("ctrl+p")
            await until(pilot, lambda: isinstance(pilot.app.screen, CommandPalette),
                        "the palette")
            await pilot.press(*"service")

            def names() -> list[str]:
                options = pilot.app.screen.query_one(CommandList).options
                return [o.hit.text or "" for o in options if isinstance(o, PaletteCommand)]

            await until(pilot, lambda: "restart-service" in names(), "the saved commands")
            seen: list[str] = []
            while seen != names():  # the palette adds hits in batches: until it settles
                seen = names()
                await pilot.pause(0.1)
            await steady_cursors(pilot)

        assert snap_compare(sandbox_app(), terminal_size=SIZE, run_before=run_before)
