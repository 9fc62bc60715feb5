"""Identical outputs grouped, live (``g`` on the run screen), and one group's machines.

The groups are recomputed from the run state on a timer (:data:`REFRESH_SECONDS`), never
per event, and not at all once the run has ended and been drawn: machines with identical
exit codes and output (both streams, byte for byte) are one row, largest group first.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Log, Static

from core.model import RunState
from core.output import OutputGroup
from core.runner import RunSession
from core.terminal_text import inert, inert_bytes
from tui import keymap
from tui.screens.diff import open_diff
from tui.screens.export import ExportDialog
from tui.widgets.run.group_table import (
    MAX_ROWS,
    GroupTable,
    current_groups,
    group_id,
    group_title,
    read_end,
)
from tui.widgets.run.run_table import duration_text, row_cells

REFRESH_SECONDS = 0.5
"""How often the groups are recomputed while the run goes on."""

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


def preview_text(group: OutputGroup) -> str:
    """The group's 4 KB tails, as the instance view reports them."""
    text = inert_bytes(group.stdout_tail)
    if group.stderr_tail:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "── stderr ──\n" + inert_bytes(group.stderr_tail)
    return text or "(no output)"


class GroupsScreen(Screen[None]):
    """Every group of identical outputs, with the highlighted group's tail below.

    Args:
        session: The run (live or from history).
    """

    BINDINGS = keymap.GROUPS
    DEFAULT_CSS = """
    GroupsScreen #groups-status { height: 1; padding: 0 1; color: $text-muted; }
    GroupsScreen GroupTable { height: 1fr; }
    GroupsScreen #group-preview { height: 1fr; border: round $primary-darken-2; }
    """

    def __init__(self, session: RunSession) -> None:
        super().__init__()
        self.session = session
        self._final_drawn = False
        self._ready = False
        self._preview: tuple[str, str] = ("", "")

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("grouping outputs…", id="groups-status")
        yield GroupTable(id="groups")
        yield Log(id="group-preview")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"run {self.session.run.run_id} · groups of identical output"
        self.query_one(GroupTable).focus()
        self._first_draw()

    @work(exclusive=True, group="groups-first-draw")
    async def _first_draw(self) -> None:
        # A run from history reads its files once before it can group: not on the loop.
        groups = await current_groups(self.session)
        self._ready = True
        self._draw(groups)
        self.set_interval(REFRESH_SECONDS, self._refresh)

    def _refresh(self) -> None:
        if self._final_drawn:
            return
        self._draw(self.session.output.groups(self.session.run.machines.values()))

    def _draw(self, groups: list[OutputGroup]) -> None:
        run = self.session.run
        table = self.query_one(GroupTable)
        table.show(groups, run)
        grouped = sum(g.size for g in groups)
        status = (f"{len(groups)} group{'s' if len(groups) != 1 else ''} of identical output "
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
        status += " · enter: machines and output · d: diff against group 1"
        self.query_one("#groups-status", Static).update(status)
        self._show_preview()
        if run.finished:
            self._final_drawn = True

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

    def action_open_group(self) -> None:
        table = self.query_one(GroupTable)
        group = table.current_group()
        if group is not None:
            self.app.push_screen(GroupScreen(self.session, group, table.current_number()))

    def action_diff(self) -> None:
        table = self.query_one(GroupTable)
        group = table.current_group()
        if group is not None:
            open_diff(self.app, self.session, table.groups, table.current_number() - 1)

    def action_export(self) -> None:
        self.app.push_screen(ExportDialog(self.session))

    def action_back(self) -> None:
        self.dismiss()


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

    def __init__(self, session: RunSession, group: OutputGroup, number: int) -> None:
        super().__init__()
        self.session = session
        self.group = group
        self.number = number
        self._members: tuple[str, ...] = ()
        self._gone = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="group-status")
        yield DataTable(cursor_type="row", zebra_stripes=True, id="members")
        yield Log(id="group-output")
        yield Footer()

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
        now = next((g for g in self.session.output.groups(self.session.run.machines.values())
                    if group_id(g) == key), None)
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
        groups = self.session.output.groups(self.session.run.machines.values())
        key = group_id(self.group)
        index = next((i for i, g in enumerate(groups) if group_id(g) == key), None)
        if index is None:
            self.notify("This group has changed since: go back and pick it again",
                        severity="warning")
            return
        open_diff(self.app, self.session, groups, index)

    def action_back(self) -> None:
        self.dismiss()
