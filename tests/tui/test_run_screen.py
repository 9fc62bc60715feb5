"""The run screen, driven with Textual's Pilot on real runs of a scripted backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual._compositor import Compositor
from textual.app import App, ComposeResult
from textual.widgets import Static

from core.fanout import FanoutOptions
from core.model import Command, CommandId, Machine, RunState, Stream
from core.runner import RunSession
from core.validate import Limit
from tests.fakes import FakeBackend, Scenario, machines
from tui import keymap
from tui.screens.groups import GroupsScreen
from tui.screens.run import RunScreen, worker_name
from tui.widgets.dialogs.confirm import Confirm
from tui.widgets.dialogs.rerun import RerunDialog
from tui.widgets.run.file_view import FileView
from tui.widgets.run.output_panes import TailPane
from tui.widgets.run.run_summary import RunSummary
from tui.widgets.run.run_table import RunTable

SIZE = (160, 40)
COMMAND = Command(CommandId.SHELL, "echo hi", timeout=0)


class RunApp(App[None]):
    """Just the run screen, and a record of the reruns it asks for."""

    def __init__(self, session: RunSession) -> None:
        super().__init__()
        self.session = session
        self.reruns: list[RunScreen.RerunRequested] = []

    def compose(self) -> ComposeResult:
        yield Static("home")

    def on_mount(self) -> None:
        self.push_screen(RunScreen(self.session, "test"))

    def on_run_screen_rerun_requested(self, message: RunScreen.RerunRequested) -> None:
        self.reruns.append(message)


def make_session(tmp_path: Path, scenarios: dict[str, Scenario], count: int = 5,
                 options: FanoutOptions | None = None,
                 commands: dict[str, Command] | None = None
                 ) -> tuple[RunSession, FakeBackend, list[Machine]]:
    backend = FakeBackend(scenarios)
    fleet = machines(count)
    chosen = commands or {}
    session = RunSession.plan([(m, chosen.get(m.id, COMMAND)) for m in fleet],
                              lambda _m: backend, options=options, runs_root=tmp_path)
    return session, backend, fleet


async def until(pilot: object, condition: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await pilot.pause(0.02)  # type: ignore[attr-defined]
    raise AssertionError(f"timed out waiting for: {what}")


THREE_OUTPUTS = {
    "m000": Scenario(stdout=b"first machine\n"),
    "m001": Scenario(stdout=b"line one\nline two\n", stderr=b"a warning\n"),
    "m002": Scenario(stdout=b""),
}
"""Three machines for the output panes: a line, two lines and a warning, nothing at all."""


async def ended_run_screen(pilot: object, app: RunApp) -> RunScreen:
    """The app's run screen, once its run has ended."""
    screen = app.screen
    assert isinstance(screen, RunScreen)
    await until(pilot, lambda: app.session.run.finished, "the run ended")
    return screen


def states(session: RunSession) -> dict[str, RunState]:
    return {mid: mr.state for mid, mr in session.run.machines.items()}


def cell(screen: RunScreen, machine_id: str, column: str) -> str:
    return str(screen.query_one(RunTable).get_cell(machine_id, column))


async def test_run_reaches_its_end_and_x_cancels_the_machine_under_the_cursor(
        tmp_path: Path) -> None:
    session, backend, fleet = make_session(tmp_path, {
        "m000": Scenario(stdout=b"hello from m000\n"),
        "m001": Scenario(stdout=b"fine\n"),
        "m002": Scenario(stdout=b"fine\n"),
        "m003": Scenario(stdout=b"broken\n", stderr=b"disk full\n", exit_code=3),
        "m004": Scenario(stdout=b"working...\n", hang=True),
    })
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: sum(s.terminal for s in states(session).values()) == 4,
                    "four machines ended")
        await until(pilot, lambda: cell(screen, "m004", "state").endswith("Running"),
                    "the table shows m004 running")
        summary = screen.query_one(RunSummary)
        await until(pilot, lambda: summary.counts.get(RunState.SUCCEEDED) == 3,
                    "summary counts three successes")
        assert summary.counts == {RunState.SUCCEEDED: 3, RunState.FAILED: 1,
                                  RunState.RUNNING: 1}
        assert cell(screen, "m003", "exit") == "3"
        assert cell(screen, "m003", "state") == "✗ Failed"
        assert cell(screen, "m000", "out") == "16 B"

        table = screen.query_one(RunTable)
        table.move_cursor(row=4)
        await pilot.press("x")
        await until(pilot, lambda: session.run.finished, "the run ended")
        await until(pilot, lambda: summary.counts.get(RunState.CANCELED) == 1,
                    "summary counts the cancel")
        assert states(session)["m004"] is RunState.CANCELED
        assert backend.canceled == ["m004"]
        assert cell(screen, "m004", "state") == "⊘ Canceled"
        assert summary.counts == {RunState.SUCCEEDED: 3, RunState.FAILED: 1,
                                  RunState.CANCELED: 1}
        assert "5/5" in str(screen.query_one("#clock", Static).render())
        del fleet


async def test_panes_show_the_tail_and_file_of_the_machine_under_the_cursor(
        tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, THREE_OUTPUTS, count=3)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ended_run_screen(pilot, app)
        tail, full = screen.query_one(TailPane), screen.query_one(FileView)
        await until(pilot, lambda: full.visible_lines() == ["first machine"],
                    "full pane shows m000's file")
        assert tail.lines[0] == "first machine"

        await pilot.press("down")
        await until(pilot, lambda: full.visible_lines() == ["line one", "line two"],
                    "full pane shows m001's file")
        assert list(tail.lines) == ["line one", "line two", "── stderr ──", "a warning", ""]
        assert Path(session.run.machines["m001"].stdout_file).read_text() == (
            "line one\nline two\n")

        await pilot.press("down")  # printed nothing: no file at all
        m002 = session.run.machines["m002"]
        await until(pilot, lambda: full.paths.get(Stream.STDOUT) == m002.stdout_file,
                    "full pane follows m002")
        assert not Path(m002.stdout_file).exists()
        assert full.visible_lines() == []
        assert "".join(tail.lines) == ""


async def test_the_tail_pane_shows_why_a_script_never_started(tmp_path: Path) -> None:
    reason = ("Execution failed: PowerShell 7 (pwsh) is not installed on the sandbox host, "
              "and the fleet file gives this Windows machine executor = \"process\"")
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(stdout=b"", exit_code=-1, error=reason),
        "m001": Scenario(stdout=b"printed\n", exit_code=2),
    }, count=2)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = await ended_run_screen(pilot, app)
        tail = screen.query_one(TailPane)
        await until(pilot, lambda: "".join(tail.lines).startswith("── error ──"),
                    "the tail pane shows m000's error")
        shown = " ".join(line.strip() for line in tail.lines[1:])
        assert "pwsh" in shown and "is not installed" in shown
        await pilot.press("down")  # a machine with output shows its output, as before
        await until(pilot, lambda: tail.lines[:1] == ["printed"], "m001's own tail")
        assert not any("── error ──" in line for line in tail.lines)


async def test_shift_x_cancels_the_rest_of_the_run_after_confirmation(tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(exit_code=1),
        "m001": Scenario(hang=True),
        "m002": Scenario(hang=True),
    }, options=FanoutOptions(concurrency=Limit(2)))
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: states(session)["m000"] is RunState.FAILED, "m000 failed")

        await pilot.press("X")
        assert isinstance(app.screen, Confirm)
        await pilot.press("n")  # refused: nothing changes
        assert app.screen is screen
        await pilot.pause(0.1)
        assert not session.run.finished

        await pilot.press("X")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await until(pilot, lambda: session.run.finished, "the run ended")
        assert states(session) == {
            "m000": RunState.FAILED, "m001": RunState.CANCELED, "m002": RunState.CANCELED,
            "m003": RunState.NOT_STARTED, "m004": RunState.NOT_STARTED,
        }
        assert session.run.stop_reason == "run canceled"


async def test_shift_r_asks_to_rerun_the_failed_timed_out_and_not_started(
        tmp_path: Path) -> None:
    short = Command(CommandId.SHELL, "sleep 1h", timeout=1)
    session, _, _ = make_session(tmp_path, {
        "m000": Scenario(),
        "m001": Scenario(exit_code=2),
        "m002": Scenario(hang=True),
        "m003": Scenario(hang=True),
    }, options=FanoutOptions(concurrency=Limit(4), grace=0.05), commands={"m002": short})
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await pilot.press("R")  # still running: refused
        assert app.reruns == []
        await until(pilot, lambda: states(session)["m002"] is RunState.TIMED_OUT,
                    "m002 timed out")
        screen.query_one(RunTable).move_cursor(row=3)
        await pilot.press("x")  # m003 canceled: not rerun
        await until(pilot, lambda: session.run.finished, "the run ended")
        assert states(session)["m004"] is RunState.SUCCEEDED

        await pilot.press("R")  # the rerun dialog: failed and timed out ticked
        await until(pilot, lambda: isinstance(app.screen, RerunDialog), "the rerun dialog")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.reruns) == 1, "a rerun is requested")
        message = app.reruns[0]
        assert [m.id for m, _ in message.assignments] == ["m001", "m002"]
        assert message.assignments[1][1] is short
        assert message.parent_run_id == session.run.run_id


async def test_a_finished_run_opens_read_only(tmp_path: Path) -> None:
    session, backend, _ = make_session(tmp_path, {"m001": Scenario(exit_code=1)}, count=3)
    await session.execute()
    backend.started.clear()
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert screen.read_only
        await pilot.pause(0.2)
        assert not any(w.name == worker_name(session.run.run_id) for w in app.workers)
        assert backend.started == []
        assert cell(screen, "m001", "state") == "✗ Failed"
        assert screen.query_one(RunSummary).counts == {RunState.SUCCEEDED: 2,
                                                       RunState.FAILED: 1}
        await pilot.press("x")
        await pilot.press("X")
        assert app.screen is screen  # nothing to cancel: no confirmation either
        await pilot.press("R")  # the rerun dialog, failed ticked
        await until(pilot, lambda: isinstance(app.screen, RerunDialog), "the rerun dialog")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.reruns) == 1, "a rerun is requested")
        assert [m.id for m, _ in app.reruns[0].assignments] == ["m001"]


async def test_escape_leaves_the_screen_and_the_run_goes_on(tmp_path: Path) -> None:
    # m000 ends only when the test says so: the run is still going when the screen is left,
    # however slowly the app starts on a busy machine.
    release = asyncio.Event()
    session, _, _ = make_session(tmp_path, {"m000": Scenario(release=release)}, count=2)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, RunScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RunScreen)
        assert not session.run.finished
        release.set()
        await until(pilot, lambda: session.run.finished, "the run ended off screen")
        assert states(session) == {"m000": RunState.SUCCEEDED, "m001": RunState.SUCCEEDED}


async def test_a_covered_run_screen_costs_the_screen_above_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a run goes on under the groups view, the view is not repainted whole on every
    tick of the run screen (Textual repaints the top screen when the one under it changes);
    back on the run screen, what happened meanwhile shows at once."""
    release = asyncio.Event()
    session, _, _ = make_session(tmp_path, {"m000": Scenario(release=release)}, count=2)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        await until(pilot, lambda: session.run.machines["m000"].state is RunState.RUNNING,
                    "m000 runs")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, GroupsScreen), "the groups view")
        await pilot.pause()
        full_frames: list[object] = []
        render_full_update = Compositor.render_full_update

        def counting(compositor: Compositor, *args: Any, **kwargs: Any) -> object:
            full_frames.append(compositor)
            return render_full_update(compositor, *args, **kwargs)

        monkeypatch.setattr(Compositor, "render_full_update", counting)
        await asyncio.sleep(1.5)  # ~15 ticks of the run screen's redraw timer: wall time
        assert len(full_frames) <= 2, f"{len(full_frames)} full repaints in 1.5 s"
        monkeypatch.undo()
        release.set()
        await until(pilot, lambda: session.run.finished, "the run ended under the view")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is run_screen, "back on the run screen")
        await until(pilot, lambda: cell(run_screen, "m000", "state").endswith("Succeeded"),
                    "m000's end drawn")


async def test_the_panes_follow_the_cursor_before_any_frame_can_be_drawn(
        tmp_path: Path) -> None:
    """The output panes show the machine under the cursor as soon as the cursor moves, in
    the same step: a frame drawn in between (the screen's timer does not wait for messages)
    would show the cursor on one machine and another machine's output, and each key would
    cost two frames instead of one."""
    session, _, _ = make_session(tmp_path, {f"m00{i}": Scenario(stdout=f"out {i}\n".encode())
                                            for i in range(5)}, count=5)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: session.run.finished, "the run's end")
        table, tail = screen.query_one(RunTable), screen.query_one(TailPane)
        for _ in range(4):
            table.action_cursor_down()  # what the key does; no loop turn before the check
            assert str(tail.border_title) == f"last 4 KB · {table.current_machine_id()}"
            assert screen.query_one(FileView).name_shown == table.current_machine_id()


def test_run_bindings_have_ids_and_are_listed() -> None:
    ids = keymap.all_binding_ids()
    assert {"run.cancel_machine", "run.cancel_run", "run.rerun", "run.back",
            "ask.yes", "ask.no"} <= set(ids)
    assert len(ids) == len(set(ids))
