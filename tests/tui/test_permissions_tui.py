"""The app for callers whose Azure role does not let them run everywhere (``[sandbox]
caller``): the fleet shows who may not be run on and why, the run confirmation opens with
"you can run on 1 of 3 machines; ..." and the run skips the rest as not permitted; a
Reader's compose refuses to start a run in which nothing would run."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static, TextArea

from core.azure.permissions import ARC_ROLE, ARC_RUN, VM_MANAGED_RUN, VM_ROLE
from core.journal_store import Journal
from core.model import HealthStatus, RunState
from tests.cli.test_permissions_cli import fleet
from tests.tui.saved_fixtures import until
from tests.tui.test_blocked_machine_details import shown_text
from tests.tui.test_compose import shown
from tests.tui.test_fleet_screen import fleet_screen
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.run import RunScreen
from tui.widgets.compose.confirm_run import ConfirmRun

SIZE = (120, 40)


@pytest.fixture(autouse=True)
def private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))


async def compose_for_all(pilot: Pilot[None], app: FleetrunApp,
                          health: dict[str, HealthStatus]) -> None:
    """Once the fleet's health is checked (as ``health``), mark all, compose, ctrl+r."""
    screen = await fleet_screen(pilot, app)
    await until(pilot, lambda: {m.name: m.health.status for m in screen.machines} == health,
                f"the health check: {health}")
    await pilot.press("a", "c")
    await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "compose")
    app.screen.query_one(TextArea).text = "echo hi"
    await pilot.press("ctrl+r")


async def test_an_admin_of_one_resource_group_is_told_before_the_run_and_runs_only_there(
        tmp_path: Path) -> None:
    app = FleetrunApp([fleet(tmp_path, "ops-admin")])
    async with app.run_test(size=SIZE) as pilot:
        await compose_for_all(pilot, app, {"lab-arc": HealthStatus.NOT_PERMITTED,
                                           "ops-arc": HealthStatus.READY,
                                           "lab-vm": HealthStatus.NOT_PERMITTED})
        # Needs of equal count in the actions' order.
        summary = (f"you can run on 1 of 3 machines; 1 needs `{VM_MANAGED_RUN}` ({VM_ROLE}); "
                   f"1 needs `{ARC_RUN}` ({ARC_ROLE})")
        await until(pilot, lambda: isinstance(app.screen, ConfirmRun), "the confirmation")
        text = " ".join(shown_text(app.screen.query_one("#summary", Static)).split())
        assert summary in text
        assert "2 machine(s) will be skipped: 2 not permitted: lab-vm, lab-arc parameters" in text
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "the run screen")
        run = app.screen.session.run
        await until(pilot, lambda: all(mr.state.terminal for mr in run.machines.values()),
                    "the run's end", within=60)
        states = {mr.machine.name: (mr.state, mr.error) for mr in run.machines.values()}
        assert states["ops-arc"][0] is RunState.SUCCEEDED
        for name, action in (("lab-arc", ARC_RUN), ("lab-vm", VM_MANAGED_RUN)):
            state, error = states[name]
            assert state is RunState.SKIPPED and "NotPermitted" in error and action in error


async def test_a_readers_compose_refuses_a_run_in_which_nothing_would_run(
        tmp_path: Path) -> None:
    app = FleetrunApp([fleet(tmp_path, "reader")])
    async with app.run_test(size=SIZE) as pilot:
        await compose_for_all(pilot, app, dict.fromkeys(("lab-arc", "ops-arc", "lab-vm"),
                                                        HealthStatus.NOT_PERMITTED))
        await until(pilot, lambda: shown("nothing would run", app), "the refusal")
        assert isinstance(app.screen, ComposeScreen)
        assert shown("every selected machine would be skipped (3 not permitted); you can run "
                     "on 0 of 3 machines; 2 need", app)
        assert shown(f"`{ARC_RUN}` ({ARC_ROLE})", app)
    with Journal(tmp_path / "data" / "journal.sqlite3") as journal:
        assert journal.list_runs() == [], "nothing was recorded"
