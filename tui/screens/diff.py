"""A group's output against a baseline group's (the largest unless the groups view set
another with ``b``), as a unified diff (``clush --diff``); ``s`` swaps the sides.

The diff is read from the output files in a thread (:mod:`core.output_diff` bounds what it
reads); the screen says what was left out when outputs are too big to diff whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.widgets import Header, RichLog, Static

from core.model import MachineId
from core.output import OutputGroup
from core.output_diff import StreamDiff, diff_machines
from core.runner import RunSession
from core.terminal_text import inert
from tui import keymap
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.run.group_table import current_groups, group_title

LINE_STYLES = {"+": "green", "-": "red", "@": "cyan", "\\": "dim"}


def open_diff(app: App[object], session: RunSession, groups: Sequence[OutputGroup],
              index: int, machine_id: MachineId | None = None, *, baseline: int = 0) -> None:
    """Show group ``index`` of ``groups`` against group ``baseline`` (the largest by
    default), or say why there is nothing.

    ``machine_id`` names the group's machine to show (its first one by default).
    """
    if not groups:
        app.notify("No machine has produced output yet: nothing to diff")
        return
    if index == baseline:
        if len(groups) == 1:
            app.notify("Every machine that ran printed the same: nothing to diff")
        elif baseline == 0:
            app.notify("This is the largest group, the one the others are diffed against: "
                       "pick another group (b on another makes it the baseline)")
        else:
            app.notify(f"Group {baseline + 1} is the baseline the others are diffed against: "
                       "pick another group")
        return
    app.push_screen(DiffScreen(session, groups, index, machine_id, baseline=baseline))


async def open_diff_for_machine(app: App[object], session: RunSession,
                                machine_id: MachineId | None) -> None:
    """Diff the group of ``machine_id`` against the largest (``d`` on the machine table)."""
    if machine_id is None:
        return
    groups = await current_groups(session)
    index = next((i for i, g in enumerate(groups) if machine_id in g.machine_ids), None)
    mr = session.run.machines[machine_id]
    if index is None:
        app.notify(f"{mr.machine.name} has not run ({mr.state.value}): it has no output to "
                   "diff")
        return
    if index == 0:
        size = groups[0].size
        app.notify(f"{mr.machine.name} printed what the largest group did ({size} machine"
                   f"{'s' if size != 1 else ''}): nothing to diff" if len(groups) > 1 else
                   "Every machine that ran printed the same: nothing to diff")
        return
    open_diff(app, session, groups, index, machine_id)


class DiffScreen(Screen[None]):
    """One group's output against a baseline group's.

    Args:
        session: The run.
        groups: Its groups, largest first (as the groups view or the machine table saw them).
        index: Which one to diff against ``groups[baseline]``.
        machine_id: The machine of that group to name (its first one by default): they all
            printed the same.
        baseline: Which group is the baseline (the ``-`` side); the largest by default.
    """

    BINDINGS = keymap.DIFF
    DEFAULT_CSS = """
    DiffScreen #diff-title { height: auto; padding: 0 1; }
    DiffScreen #diff-notes { height: auto; padding: 0 1; color: $warning; }
    DiffScreen #diff { height: 1fr; border: round $primary-darken-2; }
    """

    def __init__(self, session: RunSession, groups: Sequence[OutputGroup], index: int,
                 machine_id: MachineId | None = None, *, baseline: int = 0) -> None:
        super().__init__()
        self.session = session
        self.reference = groups[baseline]
        self.reference_number = baseline + 1
        self.other = groups[index]
        self.number = index + 1
        self.reference_machine = self.reference.machine_ids[0]
        self.other_machine = (machine_id if machine_id in self.other.machine_ids
                              else self.other.machine_ids[0])
        self.diffs: list[StreamDiff] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="diff-title")
        yield Static("comparing…", id="diff-notes")
        yield RichLog(id="diff", max_lines=None, wrap=False, markup=False)
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one(RichLog).focus()
        self._show()

    def _show(self) -> None:
        run = self.session.run
        self.sub_title = f"run {run.run_id} · diff"
        title = Text()
        title.append("- ", style="red")
        title.append(group_title(self.reference_number, self.reference, run) + "  (baseline)\n")
        title.append("+ ", style="green")
        title.append(group_title(self.number, self.other, run))
        if self.reference.exit_code != self.other.exit_code:
            title.append(f"\nexit codes differ: {self.reference.exit_code} → "
                         f"{self.other.exit_code}", style="bold")
        self.query_one("#diff-title", Static).update(title)
        self.query_one("#diff-notes", Static).update("comparing…")
        self.query_one("#diff-notes", Static).display = True
        self.query_one(RichLog).clear()
        self._compare()

    def action_swap(self) -> None:
        """The other group becomes the baseline (``-``), the baseline the ``+`` side."""
        self.reference, self.other = self.other, self.reference
        self.reference_number, self.number = self.number, self.reference_number
        self.reference_machine, self.other_machine = self.other_machine, self.reference_machine
        self._show()

    @work(exclusive=True, group="diff")
    async def _compare(self) -> None:
        machines = self.session.run.machines
        reference = machines[self.reference_machine]
        other = machines[self.other_machine]
        try:
            self.diffs = await asyncio.to_thread(diff_machines, reference, other)
        except OSError as exc:
            self.query_one("#diff-notes", Static).update(f"cannot read the outputs: {exc}")
            return
        log = self.query_one(RichLog)
        notes: list[str] = []
        for diff in self.diffs:
            if diff.identical:
                notes.append(f"{diff.stream}: identical")
                continue
            notes += [f"{diff.stream}: {note}" for note in diff.notes]
            if not diff.lines:
                continue
            for line in diff.lines:
                style = LINE_STYLES.get(line[:1], "")
                if line.startswith(("---", "+++")):
                    style = "bold"
                log.write(Text(inert(line), style=style))
            log.write(Text(""))
        if not any(d.lines for d in self.diffs):
            log.write(Text("(no difference within what was compared)", style="dim"))
        shown = self.query_one("#diff-notes", Static)
        shown.update("\n".join(notes))
        shown.display = bool(notes)
        log.scroll_home(animate=False)

    def action_back(self) -> None:
        self.dismiss()
