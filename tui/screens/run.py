"""The run screen: a run as it happens (or as it ended), machine by machine.

Everything on it is drawn from the run state (:class:`core.model.Run`, mutated by the
fan-out engine) on a timer, never per event: a thousand machines streaming output cost the
screen the same few redraws a second as one machine does.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence

from textual.app import App, ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header

from core.fanout import rerun_assignments
from core.model import Command, Machine, MachineRun, RunState, utc_now
from core.output_hint import setup_output_hint
from core.runner import RunSession
from core.terminal_text import inert
from tui import keymap
from tui.clipboard import copy_out_in_thread, file_name, inert_file_text
from tui.screen_visibility import is_visible
from tui.screens.diff import open_diff_for_machine
from tui.screens.export import ExportDialog
from tui.screens.groups import GroupsScreen
from tui.widgets.dialogs.confirm import Confirm
from tui.widgets.dialogs.rerun import CHOICES, RerunDialog
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.run.budget_line import BudgetLine
from tui.widgets.run.file_view import FileView
from tui.widgets.run.output_panes import FullOutput, OutputPanes
from tui.widgets.run.run_summary import RunSummary
from tui.widgets.run.run_table import RunTable

RERUN_STATES = frozenset(state for state, _ in CHOICES)

REFRESH_SECONDS = 0.1
"""How often the screen redraws from the run state."""


def worker_name(run_id: str) -> str:
    """The app worker that executes run ``run_id`` (one per run, whoever shows it)."""
    return f"run:{run_id}"


async def execute_session(session: RunSession, app: App[object]) -> None:
    """Run ``session`` to its end; a failure of the engine is shown, never a traceback."""
    try:
        await session.execute()
    except Exception as exc:  # the run's own failures live in its state; this is the engine's
        app.notify(f"{exc}", title=f"Run {session.run.run_id} stopped", severity="error",
                   timeout=30)
        return
    hint = setup_output_hint(session.run, session.backend_for)
    if hint and app not in _HINTED:
        _HINTED.add(app)  # once per session: the next runs would lose output the same way
        app.notify(hint, title="Output cut at 4 KB", severity="information", timeout=30,
                   markup=False)


_HINTED: weakref.WeakSet[App[object]] = weakref.WeakSet()
"""Apps that showed the setup-output hint already."""


class RunScreen(Screen[None]):
    """One run: counts, progress, the machine table and the selected machine's output.

    A run that has not ended is executed in an app worker (so leaving the screen leaves it
    running); a run that has ended opens read-only.

    Args:
        session: The run, its output store and its engine.
        fleet_name: Shown in the header: which fleet this is.
    """

    BINDINGS = keymap.RUN
    ESCAPE_TO_MINIMIZE = False
    """esc is run.back's (remappable): it closes the search bar first, then full screen."""
    DEFAULT_CSS = """
    RunScreen RunTable { height: 1fr; }
    RunScreen OutputPanes { height: 1fr; }
    """

    class RerunRequested(Message):
        """Run these machines again (the failed, timed-out and not-started of a run).

        Attributes:
            assignments: Each machine with the command it ran (secrets included: in memory).
            parent_run_id: The run they come from.
        """

        def __init__(self, assignments: Sequence[tuple[Machine, Command]],
                     parent_run_id: str) -> None:
            self.assignments = list(assignments)
            self.parent_run_id = parent_run_id
            super().__init__()

    def __init__(self, session: RunSession, fleet_name: str) -> None:
        super().__init__()
        self.session = session
        self.fleet_name = fleet_name
        self.read_only = session.run.finished
        """Opened on a run that had already ended: nothing to execute or cancel."""
        self._ended_drawn = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunSummary(id="summary")
        yield BudgetLine(id="budget")
        yield RunTable(id="machines")
        yield OutputPanes(id="output")
        yield FittingFooter()

    def on_mount(self) -> None:
        run = self.session.run
        self.sub_title = f"{self.fleet_name} · run {run.run_id}" + (
            f" · from run {run.parent_run_id}" if run.parent_run_id else "") + (
            " · read-only" if self.read_only else "")
        table = self.query_one(RunTable)
        table.load(run)
        table.cursor_moved = self._show_current
        if not self.read_only and not self.executing:
            self.app.run_worker(execute_session(self.session, self.app),
                                name=worker_name(run.run_id), group="runs",
                                exit_on_error=False)
        self.query_one(RunTable).focus()
        self._draw()
        self.set_interval(REFRESH_SECONDS, self._draw)

    @property
    def executing(self) -> bool:
        """Whether an app worker is executing this run (started here or by an earlier view)."""
        name = worker_name(self.session.run.run_id)
        return any(w.name == name and not w.is_finished for w in self.app.workers)

    # -- drawing --------------------------------------------------------------------------

    def _draw(self) -> None:
        run = self.session.run
        if is_visible(self):
            now = utc_now()
            self.query_one(RunSummary).refresh_from(run, now)
            self.query_one(BudgetLine).refresh_from(not run.finished)
            self.query_one(RunTable).refresh_from(run, now)
            self._show_current()
        if run.finished and not self._ended_drawn:
            self._ended_drawn = True
            self.refresh_bindings()
            if not self.read_only:
                counts = ", ".join(f"{n} {state}" for state, n in run.summary().items())
                self.notify(f"Run ended: {counts}")

    def on_screen_resume(self) -> None:
        self._draw()  # what changed while another screen covered this one

    def _show_current(self) -> None:
        machine_id = self.query_one(RunTable).current_machine_id()
        mr = self.session.run.machines.get(machine_id) if machine_id else None
        self.query_one(OutputPanes).show(mr, self.session.output)

    # -- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("cancel_machine", "cancel_run") and self.session.run.finished:
            return None  # shown, disabled: there is nothing left to cancel
        if action == "rerun" and not self.session.run.finished:
            return None
        return True

    def action_cancel_machine(self) -> None:
        machine_id = self.query_one(RunTable).current_machine_id()
        if machine_id is None or self.session.run.finished:
            return
        mr = self.session.run.machines[machine_id]
        if mr.state.terminal:
            self.notify(f"{mr.machine.name} has already ended ({mr.state.value})")
            return
        self.session.fanout.cancel(machine_id)
        self.notify(f"Canceling {mr.machine.name}…")

    def action_cancel_run(self) -> None:
        run = self.session.run
        if run.finished:
            return
        left = sum(1 for mr in run.machines.values() if not mr.state.terminal)
        question = (f"Cancel run {run.run_id}? The {left} machines still pending or running "
                    "are stopped; the ones not started never start.")
        self.app.push_screen(Confirm(question, yes="Cancel the run"), self._cancel_confirmed)

    def _cancel_confirmed(self, confirmed: bool | None) -> None:
        if confirmed and not self.session.run.finished:
            self.session.fanout.cancel_all("run canceled")
            self.notify("Canceling the run…")

    def action_rerun(self) -> None:
        run = self.session.run
        if not run.finished:
            self.notify("The run is still going: rerun once it ends (X cancels it)",
                        severity="warning")
            return
        if not any(mr.state in RERUN_STATES for mr in run.machines.values()):
            self.notify("Nothing to rerun: no machine failed, timed out, was canceled or "
                        "was left unstarted")
            return
        self.app.push_screen(RerunDialog(run), self._rerun_chosen)

    def _rerun_chosen(self, states: frozenset[RunState] | None) -> None:
        if states:
            self._rerun(rerun_assignments(self.session.run, states))

    def rerun_failed(self) -> None:
        """``:rerun failed``: the failed, timed-out and not-started machines, no dialog."""
        run = self.session.run
        if not run.finished:
            self.notify("The run is still going: rerun once it ends (X cancels it)",
                        severity="warning")
            return
        assignments = rerun_assignments(run)
        if not assignments:
            self.notify("Nothing to rerun: no machine failed, timed out or was left unstarted")
            return
        self._rerun(assignments)

    def _rerun(self, assignments: list[tuple[Machine, Command]]) -> None:
        # The app says "Rerunning…" once the core's gate has let the rerun through.
        self.post_message(self.RerunRequested(assignments, self.session.run.run_id))

    def action_groups(self) -> None:
        self.app.push_screen(GroupsScreen(self.session))

    async def action_diff(self) -> None:
        machine_id = self.query_one(RunTable).current_machine_id()
        await open_diff_for_machine(self.app, self.session, machine_id)

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog(self.session))

    # -- full screen, wrap, copy ----------------------------------------------------------

    @property
    def full_screen(self) -> bool:
        """The full-output pane fills the screen."""
        return isinstance(self.maximized, FullOutput)

    def action_open_machine(self) -> None:
        """The machine under the cursor: its error and whole output, full screen."""
        if not self.full_screen:
            self.action_toggle_full_screen()

    def action_toggle_full_screen(self) -> None:
        if self.full_screen:
            self.minimize()
            # Once the table is laid out again: a widget out of the view cannot take focus.
            self.call_after_refresh(self.query_one(RunTable).focus)
            return
        self.maximize(self.query_one(FullOutput), container=False)
        self.query_one(FileView).focus()

    def action_toggle_wrap(self) -> None:
        view = self.query_one(FileView)
        view.action_toggle_wrap()
        self.notify("Long lines wrapped" if view.wrap
                    else "Long lines cut at the edge (← → scroll)", timeout=2)

    def action_copy_output(self) -> None:
        machine_id = self.query_one(RunTable).current_machine_id()
        mr = self.session.run.machines.get(machine_id) if machine_id else None
        if mr is None:
            return
        self.run_worker(self._copy(mr), group="copy", exclusive=True)

    async def _copy(self, mr: MachineRun) -> None:
        def pieces() -> Iterator[str]:
            if mr.error:
                yield f"error: {inert(mr.error)}\n"
            for label, path in (("stdout", mr.stdout_file), ("stderr", mr.stderr_file)):
                if path and os.path.exists(path) and os.path.getsize(path):
                    if mr.error or label == "stderr":
                        yield f"--- {label} ---\n"
                    yield from inert_file_text(path)

        run_id = self.session.run.run_id
        await copy_out_in_thread(self.app, pieces(), what=f"the output of {inert(mr.machine.name)}",
                 name=file_name(run_id, mr.machine.name))

    def action_back(self) -> None:
        if self.full_screen:  # esc leaves full screen first
            self.action_toggle_full_screen()
            return
        self.dismiss()
