"""The whole flow in the app, on a sandbox fleet: filter → mark → compose → run → output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, TextArea

from core.model import RunState, Stream
from tests.tui.test_fleet_screen import FLEET, fleet_screen
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.history import HistoryScreen
from tui.screens.run import RunScreen
from tui.widgets.run.confirm import Confirm


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FleetrunApp]:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    yield FleetrunApp([f"sandbox:{path}"])


async def run_on(pilot: Pilot[None], app: FleetrunApp, target: str, script: str) -> RunScreen:
    """Filter with ``target``, mark what it shows, compose ``script``, confirm: the run screen."""
    await fleet_screen(pilot, app)
    await pilot.press("slash", *target, "enter", "a", "c")
    await pilot.pause()
    assert isinstance(app.screen, ComposeScreen)
    app.screen.query_one(TextArea).text = script
    await pilot.press("ctrl+r")
    await pilot.pause()
    await pilot.press("enter")
    for _ in range(100):
        if isinstance(app.screen, RunScreen):
            return app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"no run screen; on {app.screen!r}")


async def test_filter_mark_compose_run_and_read_the_output(app: FleetrunApp) -> None:
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await run_on(pilot, app, "tag:role=web", 'echo "$HOSTNAME says hi"')
        run = screen.session.run
        for _ in range(200):
            if run.finished:
                break
            await pilot.pause(0.05)
        assert sorted(mr.machine.name for mr in run.machines.values()) == [
            "web-1", "web-2", "web-3"]
        assert {mr.state for mr in run.machines.values()} == {RunState.SUCCEEDED}
        for mr in run.machines.values():
            assert Path(mr.stdout_file).read_text() == f"{mr.machine.name} says hi\n"


async def test_quitting_during_a_run_asks_first(app: FleetrunApp) -> None:
    async with app.run_test(size=(160, 45)) as pilot:
        await run_on(pilot, app, "name:web-1", "sleep 30")
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)  # asked, not gone
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
        assert app.is_running


async def test_history_lists_the_run_and_opens_it_read_only(app: FleetrunApp) -> None:
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await run_on(pilot, app, "name:web-2", "echo recorded; echo oops >&2; exit 3")
        run = screen.session.run
        for _ in range(200):
            if run.finished:
                break
            await pilot.pause(0.05)
        await pilot.press("escape", "H")
        await pilot.pause()
        history = app.screen
        assert isinstance(history, HistoryScreen)
        table = history.query_one(DataTable)
        assert table.row_count == 1
        assert table.get_cell(run.run_id, "status").plain == "finished"
        await pilot.press("enter")
        await pilot.pause()
        opened = app.screen
        assert isinstance(opened, RunScreen) and opened is not screen
        assert opened.read_only
        [machine] = opened.session.run.machines.values()
        assert machine.state is RunState.FAILED and machine.exit_code == 3
        assert opened.session.output.tail(machine.machine_id, Stream.STDOUT) == b"recorded\n"
        assert opened.session.output.tail(machine.machine_id, Stream.STDERR) == b"oops\n"
