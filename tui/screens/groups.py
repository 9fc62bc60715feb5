"""Identical outputs grouped, live (``g`` on the run screen); ``enter`` opens a group's
machines (:mod:`tui.screens.group_members`).

The groups are recomputed from the run state on a timer (:data:`REFRESH_SECONDS`), never
per event, and not at all once the run has ended and been drawn: machines with identical
exit codes and output (both streams, byte for byte, or modulo noise with ``n``) are one
row, largest group first. Groups are where triage leads somewhere: ``m`` marks some, ``c``
composes the next command for their machines, ``R`` runs this run's command again on them
(the new run records this run as its parent and the groups it came from), ``b`` picks the
baseline the others are told apart from and diffed against.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Log, Static

from core.model import Command, Machine, RunState
from core.output import OutputGroup
from core.runner import RunSession
from core.terminal_text import inert_bytes
from tui import keymap
from tui.screens.diff import open_diff
from tui.screens.export import ExportDialog
from tui.screens.group_members import REFRESH_SECONDS, GroupScreen
from tui.widgets.dialogs.confirm import Confirm
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.run.group_table import (
    MAX_ROWS,
    GroupTable,
    current_groups,
    first_line_text,
    group_id,
    group_title,
)

SOURCE_CHARS = 300
"""The most of a new run's source-group label (what history shows of where it came from)."""

def preview_text(group: OutputGroup) -> str:
    """The group's 4 KB tails, as the instance view reports them."""
    text = inert_bytes(group.stdout_tail)
    if group.stderr_tail:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "── stderr ──\n" + inert_bytes(group.stderr_tail)
    return text or "(no output)"


def source_label(numbered: Sequence[tuple[int, OutputGroup]], baseline: OutputGroup | None,
                 session: RunSession, noise: bool) -> str:
    """What a new run records about the groups it came from: ``group 2 (3 machines, exit
    1): <the line that sets it apart>``, several joined with ``; ``."""
    parts = []
    for number, group in numbered:
        code = "no exit code" if group.exit_code is None else f"exit {group.exit_code}"
        line = first_line_text(group, baseline, session.run, noise=noise).plain
        parts.append(f"group {number} ({group.size} machine{'s' if group.size != 1 else ''}, "
                     f"{code}{', modulo noise' if noise else ''}): {line}")
    label = "; ".join(parts)
    return label if len(label) <= SOURCE_CHARS else label[:SOURCE_CHARS - 1] + "…"


class GroupsScreen(Screen[None]):
    """Every group of identical outputs, with the highlighted group's tail below.

    Args:
        session: The run (live or from history).
    """

    BINDINGS = keymap.GROUPS
    DEFAULT_CSS = """
    GroupsScreen #groups-status { height: auto; max-height: 2; padding: 0 1;
                                  color: $text-muted; }
    GroupsScreen GroupTable { height: 1fr; }
    GroupsScreen #group-preview { height: 1fr; border: round $primary-darken-2; }
    """

    class RerunRequested(Message):
        """Run the run's commands again on the machines of some groups.

        Attributes:
            assignments: Each machine with the command it ran (secrets included: in memory).
            parent_run_id: The run they come from.
            source_group: Which of its groups (:func:`source_label`).
        """

        def __init__(self, assignments: Sequence[tuple[Machine, Command]], parent_run_id: str,
                     source_group: str) -> None:
            self.assignments = list(assignments)
            self.parent_run_id = parent_run_id
            self.source_group = source_group
            super().__init__()

    class ComposeRequested(Message):
        """Compose the next command for the machines of some groups (the app opens the
        composer and starts what it confirms as a child of ``parent_run_id``)."""

        def __init__(self, machines: Sequence[Machine], parent_run_id: str,
                     source_group: str) -> None:
            self.machines = list(machines)
            self.parent_run_id = parent_run_id
            self.source_group = source_group
            super().__init__()

    def __init__(self, session: RunSession) -> None:
        super().__init__()
        self.session = session
        self.marked: set[str] = set()
        """The keys (:func:`group_id`) of the marked groups."""
        self.baseline: str | None = None
        """The key of the group the others are told apart from; None: the largest."""
        self.noise = False
        """Whether outputs are grouped modulo noise (:mod:`core.output_noise`)."""
        self._final_drawn = False
        self._ready = False
        self._preview: tuple[str, str] = ("", "")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("grouping outputs…", id="groups-status")
        yield GroupTable(id="groups")
        yield Log(id="group-preview")
        yield FittingFooter()

    def on_mount(self) -> None:
        self._set_sub_title()
        self.query_one(GroupTable).focus()
        self._regroup()
        self.set_interval(REFRESH_SECONDS, self._refresh)

    def _set_sub_title(self) -> None:
        title = f"run {self.session.run.run_id} · groups of identical output"
        if self.noise:
            title += " modulo noise"
        if self.marked:
            title += f" · {len(self.marked)} marked"
        self.sub_title = title

    @work(exclusive=True, group="groups-regroup")
    async def _regroup(self) -> None:
        # A run from history reads its files once before it can group, and grouping modulo
        # noise reads every file: not on the loop.
        self._ready = False
        groups = await current_groups(self.session, noise=self.noise)
        self._ready = True
        self._final_drawn = False
        self._draw(groups)

    def _refresh(self) -> None:
        if self._final_drawn or not self._ready:
            return
        if self.noise:
            # Normalizing what machines printed since costs ~1 ms of CPU per machine
            # (bench: a 2 KB systemctl status): in a thread, one regrouping at a time.
            self._regroup()
            return
        self._draw(self.session.output.groups(self.session.run.machines.values()))

    def _draw(self, groups: list[OutputGroup]) -> None:
        run = self.session.run
        keys = {group_id(g) for g in groups}
        # A live group that printed more is a new group: its mark does not follow it.
        self.marked &= keys
        if self.baseline not in keys:
            self.baseline = None
        table = self.query_one(GroupTable)
        table.show(groups, run, marked=frozenset(self.marked), baseline=self.baseline,
                   noise=self.noise)
        grouped = sum(g.size for g in groups)
        status = (f"{len(groups)} group{'s' if len(groups) != 1 else ''} of identical output "
                  f"{'modulo noise ' if self.noise else ''}"
                  f"across {grouped} machine{'s' if grouped != 1 else ''}")
        if len(groups) > MAX_ROWS:
            status += f" · the largest {MAX_ROWS:,} shown"
        pending = sum(1 for mr in run.machines.values() if mr.state is RunState.PENDING)
        never = len(run.machines) - grouped - pending
        if pending:
            status += f" · {pending} pending"
        if never:
            status += f" · {never} skipped or not started"
        status += " · final" if run.finished else f" · live, every {REFRESH_SECONDS:g} s"
        if self.marked:
            machines = sum(g.size for g in groups if group_id(g) in self.marked)
            status += (f" · {len(self.marked)} marked ({machines} machine"
                       f"{'s' if machines != 1 else ''})")
        status += f" · d: diff against group {self._baseline_index(groups) + 1}"
        self.query_one("#groups-status", Static).update(status)
        self._set_sub_title()
        self._show_preview()
        if run.finished:
            self._final_drawn = True

    def _baseline_index(self, groups: Sequence[OutputGroup]) -> int:
        return next((i for i, g in enumerate(groups) if group_id(g) == self.baseline), 0)

    def _redraw(self) -> None:
        self._draw(self.query_one(GroupTable).groups)

    def _show_preview(self) -> None:
        table = self.query_one(GroupTable)
        group = table.current_group()
        preview = self.query_one("#group-preview", Log)
        if group is None:
            shown = "(no machine has run yet)"
            title = "output"
        else:
            shown = preview_text(group)
            title = group_title(table.current_number(), group, self.session.run)
        if self._preview != (title, shown):
            self._preview = (title, shown)
            preview.clear()
            preview.write(shown)
            preview.border_title = f"tail · {title}"

    @on(DataTable.RowHighlighted, "#groups")
    def _cursor_moved(self) -> None:
        if self._ready:
            self._show_preview()

    @on(DataTable.RowSelected, "#groups")
    def _selected(self) -> None:
        self.action_open_group()

    def targets(self) -> list[tuple[int, OutputGroup]]:
        """The marked groups (numbered, in the table's order), else the one under the
        cursor."""
        table = self.query_one(GroupTable)
        marked = [(n, g) for n, g in enumerate(table.groups, start=1)
                  if group_id(g) in self.marked]
        current = table.current_group()
        return marked or ([(table.current_number(), current)] if current is not None else [])

    def _source(self, numbered: Sequence[tuple[int, OutputGroup]]) -> str:
        groups = self.query_one(GroupTable).groups
        baseline = groups[self._baseline_index(groups)] if groups else None
        return source_label(numbered, baseline, self.session, self.noise)

    def action_mark(self) -> None:
        group = self.query_one(GroupTable).current_group()
        if group is None:
            return
        self.marked ^= {group_id(group)}
        self._redraw()

    def action_compose(self) -> None:
        numbered = self.targets()
        if not numbered:
            self.notify("No group yet: nothing to compose for")
            return
        machines = [self.session.run.machines[m].machine
                    for _, group in numbered for m in group.machine_ids]
        self.post_message(self.ComposeRequested(machines, self.session.run.run_id,
                                                self._source(numbered)))

    def action_rerun(self) -> None:
        run = self.session.run
        numbered = self.targets()
        if not numbered:
            self.notify("No group yet: nothing to rerun")
            return
        if not run.finished:
            self.notify("The run is still going: rerun once it ends", severity="warning")
            return
        assignments = [(run.machines[m].machine, run.machines[m].command)
                       for _, group in numbered for m in group.machine_ids]
        source = self._source(numbered)
        names = ", ".join(f"group {n}" for n, _ in numbered)
        count = len(assignments)
        question = (f"Run the command of run {run.run_id} again on the {count} machine"
                    f"{'s' if count != 1 else ''} of {names}?")

        def answered(yes: bool | None) -> None:
            if yes:
                self.post_message(self.RerunRequested(assignments, run.run_id, source))

        self.app.push_screen(Confirm(question, yes=f"Rerun on {count}"), answered)

    def action_baseline(self) -> None:
        table = self.query_one(GroupTable)
        group = table.current_group()
        if group is None:
            return
        number = table.current_number()
        self.baseline = group_id(group) if number > 1 else None
        self._redraw()
        self.notify(f"Group {number} is the baseline: rows say what sets them apart from it, "
                    "d diffs against it")

    def action_toggle_noise(self) -> None:
        self.noise = not self.noise
        # The groups are new ones: marks and the baseline named the old.
        self.marked.clear()
        self.baseline = None
        self.query_one("#groups-status", Static).update("grouping outputs…")
        self._regroup()
        self.notify("Grouping modulo noise (times, durations, PIDs, addresses, hex ids, "
                    "machine names)" if self.noise else "Grouping byte for byte")

    def action_open_group(self) -> None:
        table = self.query_one(GroupTable)
        group = table.current_group()
        if group is not None:
            self.app.push_screen(GroupScreen(self.session, group, table.current_number(),
                                             noise=self.noise, baseline=self.baseline))

    def action_diff(self) -> None:
        table = self.query_one(GroupTable)
        group = table.current_group()
        if group is not None:
            open_diff(self.app, self.session, table.groups, table.current_number() - 1,
                      baseline=self._baseline_index(table.groups))

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog(self.session))

    def action_back(self) -> None:
        self.dismiss()

