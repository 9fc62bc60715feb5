"""The whole flow in the app, on a sandbox fleet: filter → mark → compose → run → output."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, TextArea

from core import config
from core.fanout import plan_run
from core.journal_store import Journal
from core.model import Command, CommandId, Parameter, RunState, Stream
from core.runner import RunSession
from tests.tui.saved_fixtures import record_notifications
from tests.tui.test_fleet_screen import FLEET, fleet_screen
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.history import HistoryScreen
from tui.screens.run import RunScreen
from tui.widgets.dialogs.confirm import Confirm
from tui.widgets.dialogs.rerun import RerunDialog


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FleetrunApp]:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    posted = record_notifications(monkeypatch)
    app = FleetrunApp([f"sandbox:{path}"])
    _POSTED[id(app)] = posted
    yield app
    del _POSTED[id(app)]


_POSTED: dict[int, list[str]] = {}
"""Every notification each test's app posted (its toasts may have timed out by the time a
loaded machine gets to look)."""


async def run_on(pilot: Pilot[None], app: FleetrunApp, target: str, script: str) -> RunScreen:
    """Filter with ``target``, mark what it shows, compose ``script``, confirm: the run screen."""
    await fleet_screen(pilot, app)
    await pilot.press("slash", *target, "enter", "a", "c")
    await pilot.pause()
    assert isinstance(app.screen, ComposeScreen)
    app.screen.query_one(TextArea).text = script
    return await start_run(pilot, app)


async def start_run(pilot: Pilot[None], app: FleetrunApp) -> RunScreen:
    """ctrl+r on the composer, enter on its confirmation: the screen of the run started."""
    await pilot.press("ctrl+r")
    await pilot.pause()
    await pilot.press("enter")
    for _ in range(1200):
        if isinstance(app.screen, RunScreen):
            return app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"no run screen; on {app.screen!r}")


async def test_filter_mark_compose_run_and_read_the_output(app: FleetrunApp) -> None:
    async with app.run_test(size=(160, 45)) as pilot:
        screen = await run_on(pilot, app, "tag:role=web", 'echo "$HOSTNAME says hi"')
        run = screen.session.run
        await until_finished(pilot, screen)
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
        await until_finished(pilot, screen)
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


CANARY = "Flow-canary-1c9e-secret"


def notified(app: FleetrunApp, text: str) -> bool:
    return any(text in message for message in _POSTED[id(app)])


async def until_dialog(pilot: Pilot[None]) -> None:
    """Until R's rerun dialog is up."""
    for _ in range(1200):
        if isinstance(pilot.app.screen, RerunDialog):
            return
        await pilot.pause(0.05)
    raise AssertionError("the rerun dialog did not open")


async def until_finished(pilot: Pilot[None], screen: RunScreen) -> None:
    for _ in range(300):
        if screen.session.run.finished:
            return
        await pilot.pause(0.05)
    raise AssertionError("the run did not end")


async def test_parameters_cancel_rerun_failed_and_history(app: FleetrunApp,
                                                          tmp_path: Path) -> None:
    script = ('echo "$GREETING from $HOSTNAME, $1 (${#TOKEN} secret chars)"\n'
              'case "$HOSTNAME" in web-2) exit 4;; web-3) sleep 60;; esac\n')
    async with app.run_test(size=(160, 45)) as pilot:
        await fleet_screen(pilot, app)
        await pilot.press("slash", *"tag:role=web", "enter", "a", "c")
        await pilot.pause()
        assert isinstance(app.screen, ComposeScreen)
        app.screen.query_one(TextArea).text = script
        app.screen.query_one(TextArea).focus()
        await pilot.press("ctrl+n", *"GREETING", "tab", "tab", *"hello")
        await pilot.press("ctrl+n", "tab", "tab", *"world")  # no name: positional
        await pilot.press("ctrl+n", *"TOKEN", "tab", "space", "tab", *CANARY)
        screen = await start_run(pilot, app)
        run = screen.session.run
        by_name = {mr.machine.name: mr for mr in run.machines.values()}
        for _ in range(200):  # web-3 sleeps; the other two end
            if by_name["web-1"].state.terminal and by_name["web-2"].state.terminal:
                break
            await pilot.pause(0.05)
        assert Path(by_name["web-1"].stdout_file).read_text() == (
            f"hello from web-1, world ({len(CANARY)} secret chars)\n")
        assert (by_name["web-2"].state, by_name["web-2"].exit_code) == (RunState.FAILED, 4)

        # x on web-3 (the table keeps the run's order: web-1, web-2, web-3).
        await pilot.press("down", "down", "x")
        await until_finished(pilot, screen)
        assert by_name["web-3"].state is RunState.CANCELED
        assert notified(app, "Canceling web-3")
        for _ in range(1200):  # said on the screen's next redraw
            if notified(app, "Run ended: 1 Succeeded, 1 Failed, 1 Canceled"):
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError("the end of the run was not announced")

        await pilot.press("R")  # the failed one only: canceled is not ticked to start with
        await until_dialog(pilot)
        await pilot.press("enter")
        for _ in range(1200):
            if isinstance(app.screen, RunScreen) and app.screen is not screen:
                break
            await pilot.pause(0.05)
        rerun_screen = app.screen
        assert isinstance(rerun_screen, RunScreen) and rerun_screen is not screen
        rerun = rerun_screen.session.run
        assert rerun.parent_run_id == run.run_id
        assert [mr.machine.name for mr in rerun.machines.values()] == ["web-2"]
        assert notified(app, f"Rerunning 1 machine(s) of run {run.run_id}")
        await until_finished(pilot, rerun_screen)
        [again] = rerun.machines.values()
        assert (again.state, again.exit_code) == (RunState.FAILED, 4)
        # The rerun sent the same parameters, secret included, from memory.
        assert Path(again.stdout_file).read_text() == (
            f"hello from web-2, world ({len(CANARY)} secret chars)\n")

        while not isinstance(app.screen, HistoryScreen):
            await pilot.press("escape")
            await pilot.pause()
            if app.screen.__class__.__name__ == "FleetScreen":
                await pilot.press("H")
                await pilot.pause()
        table = app.screen.query_one(DataTable)
        assert table.row_count == 2
        assert {str(k.value) for k in table.rows} == {run.run_id, rerun.run_id}
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in written)  # the journal is among them
    for path in written:
        assert CANARY.encode() not in path.read_bytes(), path


async def test_a_rerun_the_gate_refuses_shows_the_problem_and_starts_nothing(
        app: FleetrunApp) -> None:
    """A run made before a rule existed (planned without the gate): R reruns it through the
    core's gate, which refuses it; the app names machine and problem and starts nothing."""
    async with app.run_test(size=(160, 45)) as pilot:
        await fleet_screen(pilot, app)
        assert app.fleet is not None
        web_2 = next(m for m in app.fleet.machines if m.name == "web-2")
        refused = Command(CommandId.SHELL, "exit 3", parameters=(Parameter("not-a-name", "1"),))
        backends = app.fleet.backends
        old = RunSession(plan_run([(web_2, refused)]), backends.for_machine)
        await app.push_screen(RunScreen(old, "test"))
        await until_finished(pilot, app.screen)  # type: ignore[arg-type]
        screen = app.screen
        await pilot.press("R")
        await until_dialog(pilot)
        await pilot.press("enter")
        for _ in range(1200):
            if notified(app, "not-a-name"):
                break
            await pilot.pause(0.05)
        else:
            raise AssertionError("the refused rerun was not explained")
        assert notified(app, "web-2") and notified(app, "is not a valid parameter name")
        assert not notified(app, "Rerunning")  # a refused rerun never announced itself
        await pilot.pause(0.2)
        assert app.screen is screen and app.last_session is None
        assert Journal(config.journal_path()).list_runs() == []
