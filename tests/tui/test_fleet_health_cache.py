"""The fleet screen shows the last checked health at once, with its age, while a fresh check
runs in the background (held here on an event); r checks again; the cache keeps the result."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import cast

from core.backends.base import Backend
from core.fleet.routing import Backends
from core.health_cache import HealthCache
from core.model import Health, HealthStatus, Machine, MachineId, MachineKind, OsType, utc_now
from tests.tui.snapshots.harness import ScreenApp, until
from tui.screens.fleet import FleetScreen
from tui.widgets.fleet.machine_table import MachineTable

MACHINES = [Machine(f"/m/{name}", name, MachineKind.SSH, OsType.LINUX)
            for name in ("web-01", "web-02", "new-01")]


class HeldBackend:
    """Answers a health check only once ``release`` is set; counts the checks."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.checks = 0

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        self.checks += 1
        await self.release.wait()
        return {m.id: Health(HealthStatus.UNREACHABLE, "refused", checked_at=utc_now())
                for m in machines}


def backends_of(backend: HeldBackend) -> Backends:
    return Backends({MachineKind.SSH: cast(Backend, backend)})


def seeded_cache(path: Path, hours_ago: float = 3.5) -> HealthCache:
    """web-01 Ready and web-02 NotReady, checked ``hours_ago``; new-01 never checked."""
    cache = HealthCache(path)
    checked = utc_now() - timedelta(hours=hours_ago)
    cache.save([MACHINES[0].with_health(Health(HealthStatus.READY, checked_at=checked)),
                MACHINES[1].with_health(Health(HealthStatus.NOT_READY, checked_at=checked))])
    return cache


def row(screen: FleetScreen, name: str) -> tuple[str, str]:
    """A machine's health and checked cells, as shown."""
    table = screen.query_one(MachineTable)
    cells = table.get_row(f"/m/{name}")
    return str(cells[4]), str(cells[5])


def status(screen: FleetScreen) -> str:
    return str(screen.query_one("#status").render())


async def test_cached_health_shows_before_the_check_ends_then_r_refreshes(
        tmp_path: Path) -> None:
    backend = HeldBackend()
    cache = seeded_cache(tmp_path / "health.json")
    app = ScreenApp(lambda: FleetScreen(list(MACHINES), backends_of(backend), "test",
                                        health_cache=cache))
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, FleetScreen)
                    and backend.checks == 1, "the fleet screen and its check")
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        # The check is held: what shows is the cache, with its age; never checked: unknown.
        await until(pilot, lambda: "checking health…" in status(screen), "the checking note")
        assert row(screen, "web-01") == ("✓ Ready", "3 h ago")
        assert row(screen, "web-02")[1] == "3 h ago" and "NotReady" in row(screen, "web-02")[0]
        assert row(screen, "new-01")[1] == "unknown"

        backend.release.set()
        await until(pilot, lambda: "checking health…" not in status(screen), "the check")
        assert all(row(screen, m.name)[1] == "just now" and "Unreachable" in row(
            screen, m.name)[0] for m in MACHINES)
        assert {h.status for h in cache.load().values()} == {HealthStatus.UNREACHABLE}
        assert len(cache.load()) == 3

        backend.release.clear()
        await pilot.press("r")  # forces a check
        await until(pilot, lambda: backend.checks == 2 and "checking health…" in status(
            screen), "the forced check")
        backend.release.set()
        await until(pilot, lambda: "checking health…" not in status(screen), "its end")
