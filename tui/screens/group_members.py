"""One group of identical output (``enter`` in the groups view): its machines, their
states, and the output they share; ``d`` diffs it against the baseline group.

While the run goes on the group is looked up again on a timer (:data:`REFRESH_SECONDS`);
when its machines have printed more since, it no longer exists as it was, and the screen
says so.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Header, Log, Static

from core.output import OutputGroup
from core.runner import RunSession
from core.terminal_text import inert, inert_bytes
from tui import keymap
from tui.screens.diff import open_diff
from tui.widgets.fitting_footer import FittingFooter
from tui.widgets.run.group_table import group_id, group_title, read_end
from tui.widgets.run.run_table import duration_text, row_cells
from tui.widgets.vim_table import VimTable

REFRESH_SECONDS = 0.5
"""How often the groups are recomputed while the run goes on (here and in the groups view)."""

OUTPUT_BYTES = 64 * 1024
"""The most of each stream a group's output view reads (its end)."""


def group_output_text(session: RunSession, group: OutputGroup, limit: int = OUTPUT_BYTES
                      ) -> str:
    """A group's output: the end of its first machine's stdout, then of its stderr."""
    mr = session.run.machines[group.machine_ids[0]]
    parts: list[str] = []
    for label, path in (("stdout", mr.stdout_file), ("stderr", mr.stderr_file)):
        data, skipped = read_end(path, limit)
        if not data:
            continue
        text = inert_bytes(data)
        if skipped:
            text = f"… {skipped:,} bytes not shown …\n" + text.partition("\n")[2]
        if label == "stderr":
            text = "── stderr ──\n" + text
        parts.append(text if text.endswith("\n") else text + "\n")
    return "".join(parts) or "(no output)\n"


class GroupScreen(Screen[None]):
    """One group: its machines and their (identical) output.

    While the run goes on, the group is looked up again on a timer; when its machines have
    printed more since, it no longer exists as it was, and the screen says so.

    Args:
        session: The run.
        group: The group as it was when chosen.
        number: Its number in the groups view (1 is the largest).
    """

    BINDINGS = keymap.GROUP
    DEFAULT_CSS = """
    GroupScreen #group-status { height: auto; padding: 0 1; }
    GroupScreen #members { height: 1fr; }
    GroupScreen #group-output { height: 2fr; border: round $primary-darken-2; }
    """

    def __init__(self, session: RunSession, group: OutputGroup, number: int, *,
                 noise: bool = False, baseline: str | None = None) -> None:
        super().__init__()
        self.session = session
        self.group = group
        self.number = number
        self.noise = noise
        self.baseline = baseline
        self._members: tuple[str, ...] = ()
        self._gone = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="group-status")
        yield VimTable[Text | str](cursor_type="row", zebra_stripes=True, id="members")
        yield Log(id="group-output")
        yield FittingFooter()

    def on_mount(self) -> None:
        run = self.session.run
        self.sub_title = f"run {run.run_id} · group {self.number}"
        table = self.query_one("#members", DataTable)
        for label in ("state", "machine", "elapsed", "exit", "out", "err", "error"):
            table.add_column(label, key=label)
        self._draw()
        self.query_one("#group-output", Log).write(group_output_text(self.session, self.group))
        table.focus()
        if not run.finished:
            self.set_interval(REFRESH_SECONDS, self._refresh)

    def _refresh(self) -> None:
        if self._gone:
            return
        key = group_id(self.group)
        groups = self.session.output.groups(self.session.run.machines.values(),
                                            noise=self.noise)
        now = next((g for g in groups if group_id(g) == key), None)
        if now is None:
            self._gone = True
        else:
            self.group = now
        self._draw()

    def _draw(self) -> None:
        run = self.session.run
        status = Text(group_title(self.number, self.group, run), style="bold")
        if self._gone:
            status.append("\nIts machines have printed more since: this is the group as it "
                          "was. esc goes back to the current groups.", style="yellow")
        elif not run.finished:
            status.append("  (live)", style="dim")
        self.query_one("#group-status", Static).update(status)
        table = self.query_one("#members", DataTable)
        if self._members != self.group.machine_ids:
            self._members = self.group.machine_ids
            table.clear()
            for machine_id in self.group.machine_ids:
                table.add_row(*row_cells(run.machines[machine_id]), key=machine_id)
        else:
            for machine_id in self.group.machine_ids:
                cells = row_cells(run.machines[machine_id])
                for key, value in zip(("state", "elapsed", "exit"),
                                      (cells[0], cells[2], cells[3]), strict=True):
                    table.update_cell(machine_id, key, value)
        output = self.query_one("#group-output", Log)
        first = run.machines[self.group.machine_ids[0]]
        output.border_title = (f"output of {inert(first.machine.name)} (the same on every "
                               "machine of "
                               f"the group) · {first.stdout_bytes:,} + {first.stderr_bytes:,} "
                               f"bytes · {duration_text(first.elapsed())}")

    def action_diff(self) -> None:
        groups = self.session.output.groups(self.session.run.machines.values(),
                                            noise=self.noise)
        key = group_id(self.group)
        index = next((i for i, g in enumerate(groups) if group_id(g) == key), None)
        if index is None:
            self.notify("This group has changed since: go back and pick it again",
                        severity="warning")
            return
        baseline = next((i for i, g in enumerate(groups) if group_id(g) == self.baseline), 0)
        open_diff(self.app, self.session, groups, index, baseline=baseline)

    def action_back(self) -> None:
        self.dismiss()
