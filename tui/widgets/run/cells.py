"""How a machine's part of a run reads in a table cell: state glyphs, durations, sizes."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text

from core.live_counts import LiveState, live_state
from core.model import MachineRun
from core.terminal_text import inert
from tui.states import LIVE_STATES

STATE_STYLE: dict[LiveState, tuple[str, str]] = {
    state: (look.glyph, look.tone.value) for state, look in LIVE_STATES.items()
}
"""Each state's glyph and style (:data:`tui.states.LIVE_STATES`, the one table of them)."""

COLUMNS = (("state", "state"), ("machine", "machine"), ("elapsed", "elapsed"),
           ("exit", "exit"), ("out", "out"), ("err", "err"), ("error", "error"))


def state_text(state: LiveState) -> Text:
    """The state as glyph and name, in its colour.

    The colour is a span, not the Text's base style: the run table draws cells with
    ``Text.render``, which leaves a Text's base style out.
    """
    glyph, style = STATE_STYLE[state]
    return Text.assemble((f"{glyph} {state.value}", style))


def duration_text(seconds: float | None) -> str:
    """``42s``, ``3m07s``, ``1h02m``; empty before the machine started."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def size_text(count: int) -> str:
    """Bytes for people: ``0``, ``812 B``, ``4.0 KB``, ``1.5 MB``."""
    if count == 0:
        return "0"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def error_text(mr: MachineRun) -> str:
    """The machine's error, inert, and how many protected values were masked (if any)."""
    masked = f"{mr.masked} masked" if mr.masked else ""
    return "; ".join(part for part in (inert(mr.error), masked) if part)


def row_cells(mr: MachineRun, now: datetime | None = None) -> tuple[Text | str, ...]:
    return (
        state_text(live_state(mr)),
        inert(mr.machine.name),
        duration_text(mr.elapsed(now)),
        "" if mr.exit_code is None else str(mr.exit_code),
        size_text(mr.stdout_bytes),
        size_text(mr.stderr_bytes),
        error_text(mr),
    )
