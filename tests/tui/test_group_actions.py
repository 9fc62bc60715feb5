"""Acting on output groups (issue 19): m marks, c composes for the marked groups' machines,
R reruns on them (the new run records its parent and the groups, history shows the chain),
n groups modulo noise, b picks the diff's baseline. On the sandbox fleet, in the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Static, TextArea

from core import config
from core.journal_store import Journal
from tests.fakes import Scenario
from tests.tui.saved_fixtures import record_notifications
from tests.tui.test_fleet_screen import FLEET
from tests.tui.test_flow import run_on, until_finished
from tests.tui.test_groups_diff_export import finished_run, open_groups, rows
from tests.tui.test_run_screen import RunApp, make_session, until
from tui.app import FleetrunApp
from tui.screens.compose import ComposeScreen
from tui.screens.diff import DiffScreen
from tui.screens.groups import GroupsScreen
from tui.screens.history import HistoryScreen
from tui.screens.run import RunScreen
from tui.widgets.dialogs.confirm import Confirm
from tui.widgets.run.group_table import GroupTable

SIZE = (160, 45)
SPLIT = 'if [ "$HOSTNAME" = web-2 ]; then echo broken; exit 3; fi; echo fine'
"""web-1 and web-3 print ``fine``; web-2 prints ``broken`` and fails."""


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FleetrunApp]:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    record_notifications(monkeypatch)
    yield FleetrunApp([f"sandbox:{path}"])


async def groups_of(pilot: Pilot[None], app: FleetrunApp, screen: RunScreen, count: int
                    ) -> GroupsScreen:
    """Until the run on ``screen`` ends, then g: its groups view, ``count`` groups drawn final."""
    await until_finished(pilot, screen)
    groups = await open_groups(pilot, app, count)
    await until(pilot, lambda: groups._final_drawn, f"the {count} groups drawn final")
    return groups


async def new_run_screen(pilot: Pilot[None], app: FleetrunApp, old: RunScreen) -> RunScreen:
    for _ in range(1200):
        if isinstance(app.screen, RunScreen) and app.screen is not old:
            return app.screen
        await pilot.pause(0.05)
    raise AssertionError(f"no new run screen; on {app.screen!r}")


def status(screen: GroupsScreen) -> str:
    return str(screen.query_one("#groups-status", Static).render())


async def test_m_marks_groups_and_R_reruns_on_their_machines_recorded_as_a_child(
        app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        first = await run_on(pilot, app, "tag:role=web", SPLIT)
        run = first.session.run
        groups = await groups_of(pilot, app, first, 2)
        table = groups.query_one(GroupTable)
        await pilot.press("m", "down", "m")
        await until(pilot, lambda: "2 marked (3 machines)" in status(groups), "two marked")
        assert [r[0] for r in rows(table)] == ["● 1", "● 2"]
        assert "2 marked" in groups.sub_title
        await pilot.press("up", "m")  # unmarked again: only the failing group is left
        await until(pilot, lambda: "1 marked (1 machine)" in status(groups), "one marked")
        assert [r[0] for r in rows(table)] == ["1", "● 2"]

        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, Confirm), "the confirmation")
        question = str(app.screen.query_one("#question", Static).render())
        assert "again on the 1 machine of group 2" in question and run.run_id in question
        await pilot.press("y")
        rerun_screen = await new_run_screen(pilot, app, first)
        rerun = rerun_screen.session.run
        assert [mr.machine.name for mr in rerun.machines.values()] == ["web-2"]
        assert rerun.parent_run_id == run.run_id
        assert rerun.source_group == "group 2 (1 machine, exit 3): broken"
        assert f"from run {run.run_id}" in rerun_screen.sub_title
        await until_finished(pilot, rerun_screen)
        recorded = Journal(config.journal_path()).get_run(rerun.run_id)
        assert (recorded.parent_run_id, recorded.source_group) == (run.run_id, rerun.source_group)

        while not isinstance(app.screen, HistoryScreen):
            await pilot.press("escape")
            await pilot.pause()
            if app.screen.__class__.__name__ == "FleetScreen":
                await pilot.press("H")
                await pilot.pause()
        history = app.screen.query_one(DataTable)
        await until(pilot, lambda: history.row_count == 2, "both runs listed")
        assert str(history.get_cell(rerun.run_id, "from")) == (
            f"↳ {run.run_id} · group 2 (1 machine, exit 3): broken")
        assert str(history.get_cell(run.run_id, "from")) == ""


async def test_c_composes_for_exactly_the_marked_groups_machines(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        first = await run_on(pilot, app, "tag:role=web", SPLIT)
        groups = await groups_of(pilot, app, first, 2)
        await pilot.press("down", "m", "up", "c")  # marked: those, wherever the cursor is
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the composer")
        composer = app.screen
        assert isinstance(composer, ComposeScreen)
        assert [m.name for m in composer.machines] == ["web-2"]
        composer.query_one(TextArea).text = "echo next step"
        await pilot.press("ctrl+r")
        await pilot.pause()
        await pilot.press("enter")
        child = await new_run_screen(pilot, app, first)
        run = child.session.run
        assert [mr.machine.name for mr in run.machines.values()] == ["web-2"]
        assert run.parent_run_id == first.session.run.run_id
        assert run.source_group == "group 2 (1 machine, exit 3): broken"
        await until_finished(pilot, child)
        assert groups.is_attached  # still under the new run: esc leads back to it


async def test_n_groups_outputs_that_differ_only_in_noise_as_one(app: FleetrunApp) -> None:
    script = 'echo "$(hostname) at $(date +%T.%N) pid $$ took $$ms"; echo done'
    async with app.run_test(size=SIZE) as pilot:
        first = await run_on(pilot, app, "tag:role=web", script)
        groups = await groups_of(pilot, app, first, 3)
        table = groups.query_one(GroupTable)
        await pilot.press("n")
        await until(pilot, lambda: table.row_count == 1, "one group modulo noise")
        assert rows(table)[0][:2] == ["1", "3"]
        assert status(groups).startswith(
            "1 group of identical output modulo noise across 3 machines")
        assert "modulo noise" in groups.sub_title
        await pilot.press("n")
        await until(pilot, lambda: table.row_count == 3, "byte for byte again")


async def test_b_sets_the_baseline_rows_and_the_diff_compare_against(tmp_path: Path) -> None:
    session = await finished_run(tmp_path)  # group 1: 3 machines print ok; group 2 fails
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_groups(pilot, app, 2)
        table = screen.query_one(GroupTable)
        assert [r[5] for r in rows(table)] == ["baseline · ok", "checking"]
        await pilot.press("down", "b")
        await until(pilot, lambda: rows(table)[1][5] == "baseline · checking", "new baseline")
        assert rows(table)[0][5] == "ok"
        assert "d: diff against group 2" in str(screen.query_one("#groups-status",
                                                                  Static).render())
        await pilot.press("d")  # on the baseline itself: nothing to diff
        assert app.screen is screen
        await pilot.press("up", "d")
        await until(pilot, lambda: isinstance(app.screen, DiffScreen), "the diff")
        diff = app.screen
        assert isinstance(diff, DiffScreen)
        title = str(diff.query_one("#diff-title", Static).render())
        assert title.startswith("- group 2 · 2 machines · exit 1") and "(baseline)" in title
        assert "+ group 1 · 3 machines · exit 0" in title
        shown = {b.binding.key for b in diff.active_bindings.values() if b.binding.show}
        assert {"s", "escape"} <= shown
        await pilot.press("s")
        await until(pilot, lambda: str(diff.query_one("#diff-title", Static).render())
                    .startswith("- group 1"), "the sides swapped")


async def test_at_80_columns_the_telling_line_is_on_screen(tmp_path: Path) -> None:
    session = await finished_run(tmp_path)
    app = RunApp(session)
    async with app.run_test(size=(80, 24)) as pilot:
        table = (await open_groups(pilot, app, 2)).query_one(GroupTable)
        before = [c for c in table.columns.values() if str(c.key.value) != "output"]
        left = sum(c.get_render_width(table) for c in before)
        assert left <= 80 - 16, f"the output column starts at {left}"
        assert rows(table)[1][4] == "m001, m003"  # the members still fit their column


async def test_n_follows_a_live_run(tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {"m001": Scenario(stdout=b"working\n", hang=True)},
                                 count=4)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: sum(mr.state.terminal for mr in
                                       session.run.machines.values()) == 3, "three ended")
        await pilot.press("g", "n")
        screen = app.screen
        assert isinstance(screen, GroupsScreen)
        table = screen.query_one(GroupTable)
        await until(pilot, lambda: table.row_count == 2 and "live" in status(screen),
                    "two live groups modulo noise")
        session.fanout.cancel("m001")
        await until(pilot, lambda: "final" in status(screen), "the run's end shows")
        assert "Canceled" in rows(table)[1][3] and "modulo noise" in status(screen)
