"""R on an ended run: the rerun dialog's ticks decide exactly which machines run again."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Checkbox

from core.model import RunState
from core.runner import RunSession
from tests.fakes import Scenario
from tests.tui.test_run_screen import SIZE, RunApp, make_session, until
from tui.screens.run import RunScreen
from tui.widgets.dialogs.rerun import RerunDialog

ENDS = {"m000": RunState.FAILED, "m001": RunState.TIMED_OUT, "m002": RunState.CANCELED,
        "m003": RunState.NOT_STARTED, "m004": RunState.NOT_STARTED,
        "m005": RunState.SUCCEEDED}


async def ended(tmp_path: Path) -> RunSession:
    """A run of six machines that ended one of each way (two not started)."""
    session, _, _ = make_session(tmp_path, {}, count=len(ENDS))
    await session.execute()
    for machine_id, state in ENDS.items():
        session.run.machines[machine_id].state = state  # type: ignore[index]
    return session


def dialog_text(app: RunApp) -> str:
    dialog = app.screen
    assert isinstance(dialog, RerunDialog)
    labels = [str(c.label) for c in dialog.query(Checkbox)]
    return " | ".join(labels) + f" || {dialog.query_one('#rerun-total').render()}"


async def open_dialog(app: RunApp, pilot: object) -> RerunDialog:
    assert isinstance(app.screen, RunScreen)
    await pilot.press("R")  # type: ignore[attr-defined]
    await until(pilot, lambda: isinstance(app.screen, RerunDialog), "the rerun dialog")
    assert isinstance(app.screen, RerunDialog)
    return app.screen


async def test_failed_and_timed_out_are_ticked_and_counted(tmp_path: Path) -> None:
    session = await ended(tmp_path)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(app, pilot)
        assert dialog.chosen == {RunState.FAILED, RunState.TIMED_OUT}
        assert dialog_text(app) == ("failed (1) | timed out (1) | canceled (1) | "
                                    "not started (2) || Rerun 2 machine(s)")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.reruns) == 1, "a rerun is requested")
    [message] = app.reruns
    assert [m.id for m, _ in message.assignments] == ["m000", "m001"]
    assert message.parent_run_id == session.run.run_id


async def test_ticks_choose_the_machine_set(tmp_path: Path) -> None:
    session = await ended(tmp_path)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(app, pilot)
        # failed stays; timed out off; canceled and not started on.
        await pilot.press("down", "space", "down", "space", "j", "space")
        await pilot.pause()
        assert dialog.chosen == {RunState.FAILED, RunState.CANCELED, RunState.NOT_STARTED}
        assert dialog_text(app).endswith("Rerun 4 machine(s)")
        await pilot.press("enter")
        await until(pilot, lambda: len(app.reruns) == 1, "a rerun is requested")
    assert [m.id for m, _ in app.reruns[0].assignments] == ["m000", "m002", "m003", "m004"]


async def test_nothing_ticked_reruns_nothing_and_esc_goes_back(tmp_path: Path) -> None:
    session = await ended(tmp_path)
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        dialog = await open_dialog(app, pilot)
        await pilot.press("space", "down", "space")  # failed and timed out off
        await pilot.pause()
        assert dialog.chosen == frozenset()
        await pilot.press("enter")  # refused: the dialog stays
        await pilot.pause()
        assert app.screen is dialog
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), "back on the run")
        await pilot.pause()
    assert app.reruns == []


async def test_a_run_where_every_machine_succeeded_has_nothing_to_rerun(
        tmp_path: Path) -> None:
    session, _, _ = make_session(tmp_path, {"m000": Scenario()}, count=2)
    await session.execute()
    app = RunApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("R")
        await pilot.pause()
        assert isinstance(app.screen, RunScreen)
    assert app.reruns == []
