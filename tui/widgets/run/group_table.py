"""Identical outputs of a run as a table: a row per group, largest first (``clush -b``)."""

from __future__ import annotations

import asyncio
import os

from rich.text import Text
from textual.widgets import DataTable

from core.group_line import telling_line
from core.model import Run, RunState, Stream
from core.output import OutputGroup
from core.output_noise import machine_names
from core.runner import RunSession
from core.terminal_text import inert
from tui import keymap
from tui.widgets.run.run_table import STATE_STYLE

MEMBERS_WIDTH = 44
"""Characters of member names in a group's row before ``+N``."""

NARROW_WIDTH = 120
"""Below this many columns, states and members get :data:`NARROW_COLUMN` each, so that the
line that sets a group apart still shows (at 80 columns it would be off screen)."""
NARROW_COLUMN = 16

MAX_ROWS = 1000
"""Groups drawn at most: when every machine printed something of its own (a host name, a
time), thousands of one-machine groups would make a table too slow to redraw live."""

COLUMNS = (("#", "number"), ("machines", "size"), ("exit", "exit"), ("states", "states"),
           ("members", "members"), ("output", "output"))


async def current_groups(session: RunSession, *, noise: bool = False) -> list[OutputGroup]:
    """The run's groups now; a run from history has its files read in a thread first, and
    grouping modulo noise reads every file (in a thread too)."""
    if session.output.pending_digests():
        await asyncio.to_thread(session.output.complete_digests)
    if noise:
        return await asyncio.to_thread(session.output.groups, list(session.run.machines.values()),
                                       noise=True)
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
        if not names and len(name) > room:  # the first name alone is too long: say so
            name = name[:max(1, room - 1)] + "…"
        names.append(name)
        used += len(name) + (2 if len(names) > 1 else 0)
    more = group.size - len(names)
    return ", ".join(names) + (f" +{more}" if more else "")


def first_line_text(group: OutputGroup, reference: OutputGroup | None = None,
                    run: Run | None = None, *, noise: bool = False) -> Text:
    """What tells the group's output apart from the baseline group's (``reference``): the
    rule of :func:`core.group_line.telling_line`; stderr in red, ``… `` before a line that
    is not the first. ``(no output)`` when it printed nothing.
    """
    def names(of: OutputGroup | None) -> tuple[str, ...]:
        if run is None or of is None or not of.machine_ids:
            return ()
        return machine_names(run.machines[of.machine_ids[0]].machine)

    line = telling_line(group, reference, own_names=names(group),
                        baseline_names=names(reference), noise=noise)
    if line is None:
        return Text("(no output)", style="dim")
    style = "red" if line.stream is Stream.STDERR else ""
    return Text(("… " if line.number else "") + inert(line.text), style=style)


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

    BINDINGS = keymap.GROUP_TABLE
    """j/k/G as in every table; not g, which leaves the groups view."""

    DEFAULT_CSS = """
    GroupTable { height: 1fr; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self.groups: list[OutputGroup] = []
        self.members_width = MEMBERS_WIDTH
        self._drawn: object = None

    def on_mount(self) -> None:
        narrow = self.app.size.width < NARROW_WIDTH
        self.members_width = NARROW_COLUMN if narrow else MEMBERS_WIDTH
        widths = {"number": 5, "size": 8, "exit": 5, "states": NARROW_COLUMN if narrow else 22,
                  "members": self.members_width}
        for label, key in COLUMNS:
            self.add_column(label, key=key, width=widths.get(key))

    def show(self, groups: list[OutputGroup], run: Run, *, marked: frozenset[str] = frozenset(),
             baseline: str | None = None, noise: bool = False) -> bool:
        """Draw ``groups`` of ``run`` (the largest :data:`MAX_ROWS`); returns whether
        anything changed.

        ``marked`` are the keys of the marked groups (``●`` before their number);
        ``baseline`` the key of the group the others are told apart from (the largest when
        None or gone); ``noise`` whether the groups were made modulo noise (their labels are
        compared the same way).
        """
        groups = groups[:MAX_ROWS]
        keys = [group_id(g) for g in groups]
        reference = next((g for g, k in zip(groups, keys, strict=True) if k == baseline),
                         groups[0] if groups else None)
        # A row shows its group's output (key and tails), machines and their states, and how
        # it differs from the baseline's output: compared before any cell is made.
        signature = [(key, g.stdout_tail, g.stderr_tail, g.machine_ids,
                      tuple(run.machines[m].state for m in g.machine_ids))
                     for key, g in zip(keys, groups, strict=True)]
        drawn = (signature, marked, group_id(reference) if reference else None, noise)
        keep = self.current_key()
        self.groups = groups
        if drawn == self._drawn:
            return False
        self._drawn = drawn
        row_index = self.cursor_row
        self.clear()
        for number, (key, group) in enumerate(zip(keys, groups, strict=True), start=1):
            self.add_row(*self._cells(number, group, run, reference, key in marked, noise,
                                      len(groups) > 1), key=key)
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

    def _cells(self, number: int, group: OutputGroup, run: Run, reference: OutputGroup | None,
               marked: bool, noise: bool, run_has_others: bool) -> tuple[Text | str, ...]:
        label = first_line_text(group, reference, run, noise=noise)
        if group is reference and run_has_others:
            label = Text.assemble(("baseline · ", "bold"), label)
        number_text = Text(f"● {number}", style="bold reverse") if marked else str(number)
        return (number_text, str(group.size), exit_text(group), state_counts_text(group, run),
                members_text(group, run, self.members_width), label)
