"""Identical outputs of a run as a table: a row per group, largest first (``clush -b``)."""

from __future__ import annotations

import asyncio
import os

from rich.text import Text
from textual.widgets import DataTable

from core.model import Run, RunState
from core.output import OutputGroup
from core.runner import RunSession
from core.terminal_text import inert, inert_bytes
from tui.widgets.run.run_table import STATE_STYLE

MEMBERS_WIDTH = 44
"""Characters of member names in a group's row before ``+N``."""

MAX_ROWS = 1000
"""Groups drawn at most: when every machine printed something of its own (a host name, a
time), thousands of one-machine groups would make a table too slow to redraw live."""

COLUMNS = (("#", "number"), ("machines", "size"), ("exit", "exit"), ("states", "states"),
           ("members", "members"), ("output", "output"))


async def current_groups(session: RunSession) -> list[OutputGroup]:
    """The run's groups now; a run from history has its files read in a thread first."""
    if session.output.pending_digests():
        await asyncio.to_thread(session.output.complete_digests)
    return session.output.groups(session.run.machines.values())


def group_id(group: OutputGroup) -> str:
    """A row key for a group: its exit code and the start of both digests."""
    exit_code, stdout, stderr = group.key
    return f"{exit_code}:{stdout.hex()[:16]}:{stderr.hex()[:16]}"


def state_counts_text(group: OutputGroup, run: Run) -> Text:
    """``✓ 12 ✗ 1``: the states of a group's machines (identical output, maybe not ended)."""
    counts: dict[RunState, int] = {}
    for machine_id in group.machine_ids:
        state = run.machines[machine_id].state
        counts[state] = counts.get(state, 0) + 1
    text = Text()
    for state in RunState:
        if counts.get(state):
            glyph, style = STATE_STYLE[state]
            text.append(f"{glyph} {state.value} {counts[state]} ", style=style)
    return text


def members_text(group: OutputGroup, run: Run, width: int = MEMBERS_WIDTH) -> str:
    """As many member names as fit in ``width`` characters, then ``+N``."""
    names: list[str] = []
    used = 0
    for machine_id in group.machine_ids:
        name = inert(run.machines[machine_id].machine.name)
        left = group.size - len(names) - 1
        room = width - (len(f" +{left}") if left else 0)
        if names and used + 2 + len(name) > room:
            break
        names.append(name)
        used += len(name) + (2 if len(names) > 1 else 0)
    more = group.size - len(names)
    return ", ".join(names) + (f" +{more}" if more else "")


def first_line_text(group: OutputGroup, reference: OutputGroup | None = None) -> Text:
    """What tells the group's output apart: its first line that the largest group
    (``reference``) does not have at the same place, from stdout then stderr (in red).

    The largest group itself, and one whose output only differs past what the tails hold,
    shows its first line. ``(no output)`` when it printed nothing.
    """
    streams = ((group.stdout_tail, reference.stdout_tail if reference else None, ""),
               (group.stderr_tail, reference.stderr_tail if reference else None, "red"))
    first: Text | None = None
    for tail, other, style in streams:
        lines = inert_bytes(tail).splitlines()
        if first is None and any(ln.strip() for ln in lines):
            first = Text(next(ln.strip() for ln in lines if ln.strip())[:200], style=style)
        if other is None or reference is group:
            continue
        theirs = inert_bytes(other).splitlines()
        for number, line in enumerate(lines):
            if line.strip() and (number >= len(theirs) or theirs[number] != line):
                prefix = "… " if number else ""
                return Text(prefix + line.strip()[:200], style=style)
    return first or Text("(no output)", style="dim")


def exit_text(group: OutputGroup) -> Text:
    if group.exit_code is None:
        return Text("—", style="dim")
    return Text(str(group.exit_code), style="green" if group.exit_code == 0 else "red")


def group_title(number: int, group: OutputGroup, run: Run) -> str:
    """``group 2 · 3 machines · exit 1 · web-2, web-5, web-9``."""
    code = "no exit code" if group.exit_code is None else f"exit {group.exit_code}"
    return (f"group {number} · {group.size} machine{'s' if group.size != 1 else ''} · {code}"
            f" · {members_text(group, run)}")


def read_end(path: str, limit: int) -> tuple[bytes, int]:
    """At most the last ``limit`` bytes of a file (none if it does not exist), and how many
    bytes before them were not read."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = max(0, size - limit)
            handle.seek(start)
            return handle.read(limit), start
    except FileNotFoundError:
        return b"", 0


class GroupTable(DataTable[Text | str]):
    """A row per group of identical outputs, keyed by :func:`group_id`.

    :meth:`show` redraws only when the groups changed, and keeps the cursor on the group it
    was on (or at the same row when that group is gone: its machines printed more).
    """

    DEFAULT_CSS = """
    GroupTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.groups: list[OutputGroup] = []
        self._drawn: list[tuple[str, bytes, bytes, tuple[str, ...], tuple[RunState, ...]]] = []

    def on_mount(self) -> None:
        widths = {"number": 3, "size": 8, "exit": 5, "states": 22, "members": MEMBERS_WIDTH}
        for label, key in COLUMNS:
            self.add_column(label, key=key, width=widths.get(key))

    def show(self, groups: list[OutputGroup], run: Run) -> bool:
        """Draw ``groups`` of ``run`` (the largest :data:`MAX_ROWS`); returns whether
        anything changed."""
        groups = groups[:MAX_ROWS]
        keys = [group_id(g) for g in groups]
        # A row shows its group's output (key and tails), machines and their states, and how
        # it differs from the first row's output: compared before any cell is made.
        signature = [(key, g.stdout_tail, g.stderr_tail, g.machine_ids,
                      tuple(run.machines[m].state for m in g.machine_ids))
                     for key, g in zip(keys, groups, strict=True)]
        keep = self.current_key()
        self.groups = groups
        if signature == self._drawn:
            return False
        self._drawn = signature
        largest = groups[0] if groups else None
        row_index = self.cursor_row
        self.clear()
        for number, (key, group) in enumerate(zip(keys, groups, strict=True), start=1):
            self.add_row(*self._cells(number, group, run, largest), key=key)
        if keep in keys:
            self.move_cursor(row=keys.index(keep), scroll=False)
        elif groups:
            self.move_cursor(row=min(row_index, len(groups) - 1), scroll=False)
        return True

    def current_key(self) -> str | None:
        group = self.current_group()
        return group_id(group) if group is not None else None

    def current_group(self) -> OutputGroup | None:
        if not self.groups or not 0 <= self.cursor_row < len(self.groups):
            return None
        return self.groups[self.cursor_row]

    def current_number(self) -> int:
        """The highlighted group's number (1 is the largest); 0 when there is none."""
        return self.cursor_row + 1 if self.current_group() is not None else 0

    @staticmethod
    def _cells(number: int, group: OutputGroup, run: Run, largest: OutputGroup | None
               ) -> tuple[Text | str, ...]:
        return (str(number), str(group.size), exit_text(group), state_counts_text(group, run),
                members_text(group, run), first_line_text(group, largest))
