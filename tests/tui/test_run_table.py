"""The run's machine table on a run larger than the screen: what is on screen is current."""

from __future__ import annotations

from datetime import timedelta

from textual.app import App, ComposeResult

from core.model import Command, CommandId, MachineRun, Run, RunState, utc_now
from tests.fakes import machines
from tui.widgets.run.run_table import RunTable

COMMAND = Command(CommandId.SHELL, "echo hi")


def big_run(count: int) -> Run:
    return Run("r1", {m.id: MachineRun(m, COMMAND) for m in machines(count)})


class TableApp(App[None]):
    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run_state = run

    def compose(self) -> ComposeResult:
        yield RunTable()

    def on_mount(self) -> None:
        self.query_one(RunTable).load(self.run_state)


def state_cell(table: RunTable, row: int) -> str:
    return str(table.get_row_at(row)[0])


def finish(mr: MachineRun, state: RunState, exit_code: int) -> None:
    mr.state, mr.exit_code = state, exit_code
    mr.started = utc_now() - timedelta(seconds=75)
    mr.ended = utc_now()


async def test_rows_on_screen_follow_the_run_and_rows_scrolled_to_are_current() -> None:
    run = big_run(300)
    app = TableApp(run)
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(RunTable)
        ids = list(run.machines)
        finish(run.machines[ids[0]], RunState.SUCCEEDED, 0)
        finish(run.machines[ids[250]], RunState.FAILED, 3)
        table.refresh_from(run)
        await pilot.pause()
        assert "Succeeded" in state_cell(table, 0)
        assert table.get_row_at(0)[2] == "1m15s"

        table.move_cursor(row=250)  # scrolls the table down to it
        await pilot.pause()
        assert 250 in table.rows_in_view()
        assert "Failed" in state_cell(table, 250)
        assert table.get_row_at(250)[3] == "3"

        run.machines[ids[1]].state = RunState.RUNNING  # out of view now
        table.refresh_from(run)
        table.move_cursor(row=0)
        await pilot.pause()
        assert "Running" in state_cell(table, 1)
