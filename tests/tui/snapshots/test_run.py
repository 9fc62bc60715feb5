"""Snapshot of the run screen once a run has ended (a scripted backend with fixed times)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from core.fanout import plan_run
from core.model import Command, CommandId, Machine, OsType, Parameter, RunState
from core.runner import RunSession
from tests.tui.snapshots.harness import (
    DB1,
    NOW,
    WEB1,
    WEB2,
    WIN1,
    ScreenApp,
    Script,
    ScriptedBackend,
    SnapCompare,
    machine,
    until,
)
from tui.screens.groups import GroupsScreen
from tui.screens.run import RunScreen
from tui.widgets.run.file_view import FileView
from tui.widgets.run.group_table import GroupTable
from tui.widgets.run.run_table import RunTable

SIZE = (150, 40)
RUN_ID = f"{int(NOW.timestamp()):08x}c0ffee"
WEB3 = machine("web-03")

SHELL = Command(CommandId.SHELL, 'systemctl restart "$SERVICE" && echo "restarted on $HOSTNAME"',
                parameters=(Parameter("SERVICE", "nginx"), Parameter("TOKEN", "s3cr3t", True)),
                timeout=600)
POWERSHELL = Command(CommandId.POWERSHELL, "Restart-Service -Name $env:SERVICE -Force",
                     parameters=(Parameter("SERVICE", "nginx"),), timeout=600)

SCRIPTS = {
    WEB1.id: Script(stdout=b"stopping nginx\nstarting nginx\nrestarted on web-01\n",
                    seconds=2.4),
    WEB2.id: Script(stdout=b"stopping nginx\n", stderr=b"Job for nginx.service failed.\n",
                    exit_code=3, state=RunState.FAILED, started_after=0.2, seconds=5.1,
                    error="exit status=3"),
    WEB3.id: Script(stdout=b"stopping nginx\n", exit_code=-1, state=RunState.TIMED_OUT,
                    started_after=0.1, seconds=600, error="timed out after 600 s"),
    WIN1.id: Script(stdout=b"restarted nginx on WIN-APP-01\r\n", started_after=1.0,
                    seconds=11.7),
}


def ended_run(runs_root: Path) -> RunSession:
    machines: list[Machine] = [WEB1, WEB2, WEB3, DB1, WIN1]
    assignments = [(m, POWERSHELL if m.os is OsType.WINDOWS else SHELL) for m in machines]
    run = plan_run(assignments, fleet="sandbox", target="tag:role=web,app", run_id=RUN_ID)
    backend = ScriptedBackend(SCRIPTS)
    return RunSession(run, lambda _m: backend, runs_root=runs_root)


class TestRun:
    def test_run_screen_after_the_run_ended(self, snap_compare: SnapCompare, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """Counts per state, every machine's end, the first machine's tail and output."""
        monkeypatch.chdir(tmp_path)  # output files under ./runs: no temporary path shown
        session = ended_run(Path("runs"))

        async def run_before(pilot: Pilot[None]) -> None:
            await until(pilot, lambda: session.run.finished, "the run's end")
            screen = pilot.app.screen
            assert isinstance(screen, RunScreen)
            table = screen.query_one(RunTable)

            def every_end_drawn() -> bool:
                return all(str(table.get_cell(mid, "state")).endswith(mr.state.value)
                           for mid, mr in session.run.machines.items())

            await until(pilot, every_end_drawn, "the table drawing every machine's end")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: RunScreen(session, "sandbox")),
                            terminal_size=SIZE, run_before=run_before)


async def ended_run_screen(pilot: Pilot[None], session: RunSession) -> RunScreen:
    """The run screen once the run has ended and every end is drawn."""
    await until(pilot, lambda: session.run.finished, "the run's end")
    screen = pilot.app.screen
    assert isinstance(screen, RunScreen)
    table = screen.query_one(RunTable)
    await until(pilot, lambda: all(str(table.get_cell(mid, "state")).endswith(mr.state.value)
                                   for mid, mr in session.run.machines.items()),
                "the table drawing every machine's end")
    return screen


class TestRunTools:
    """The run screen's g (groups), d (diff) and e (export) views of the same ended run."""

    @pytest.mark.parametrize("keys", [("g",), ("g", "down", "d"), ("e",)],
                             ids=["groups", "diff", "export"])
    def test_run_tool(self, snap_compare: SnapCompare, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch, keys: tuple[str, ...]) -> None:
        monkeypatch.chdir(tmp_path)
        session = ended_run(Path("runs"))

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await ended_run_screen(pilot, session)
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            await until(pilot, lambda: pilot.app.screen is not screen, "the view to open")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: RunScreen(session, "sandbox")),
                            terminal_size=SIZE, run_before=run_before)

    def test_groups_with_two_marked(self, snap_compare: SnapCompare, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
        """m on two groups: ● before their numbers, the count in the status and title."""
        monkeypatch.chdir(tmp_path)
        session = ended_run(Path("runs"))

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await ended_run_screen(pilot, session)
            await pilot.press("g")
            await until(pilot, lambda: pilot.app.screen is not screen, "the groups view")
            groups = pilot.app.screen
            assert isinstance(groups, GroupsScreen)
            table = groups.query_one(GroupTable)
            await until(pilot, lambda: table.row_count >= 3 and groups._final_drawn,
                        "the groups drawn")
            await pilot.press("down", "m", "down", "m")
            await until(pilot, lambda: len(groups.marked) == 2, "two groups marked")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: RunScreen(session, "sandbox")),
                            terminal_size=SIZE, run_before=run_before)


class TestRunFullScreen:
    """enter on a failed machine: its whole error above its output, the pane full screen."""

    def test_full_screen_output_of_a_failed_machine(
            self, snap_compare: SnapCompare, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.chdir(tmp_path)
        session = ended_run(Path("runs"))

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await ended_run_screen(pilot, session)
            await pilot.press("down", "enter")
            await until(pilot, lambda: screen.maximized is not None, "full screen")
            view = screen.query_one(FileView)
            await until(pilot, lambda: view.name_shown == "web-02"
                        and view.index is not None and view.index.line_count == 1,
                        "web-02's output")
            await pilot.pause()

        assert snap_compare(ScreenApp(lambda: RunScreen(session, "sandbox")),
                            terminal_size=(100, 24), run_before=run_before)
