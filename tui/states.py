"""How each run state and machine health reads: a glyph, and a tone that colours it.

The one table of both, for the TUI and the headless CLI alike. A state is told by its glyph
as well as by its colour, so it reads without colour (``NO_COLOR``, a monochrome terminal,
colour blindness). Every glyph is one cell wide (``rich.cells.cell_len``) and drawn by
common terminal fonts (DejaVu Sans Mono, which Menlo derives from): a wider one, or one a
font lacks, shifts the rest of its row in some terminals.

A tone is a plain ANSI colour name. The CLI prints it with the terminal's own palette; the
TUI maps each tone to the current theme's colour for it (``tui.themes``: green is the
theme's success, red its error, yellow its warning, cyan its primary), so a state looks as
the theme says it should and stays readable on that theme's background.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from core.live_counts import LiveState
from core.model import HealthStatus, RunState, Waiting


class Tone(StrEnum):
    """What a state's colour says; the value is the Rich style it is drawn with."""

    GOOD = "green"
    """Done, and as hoped (theme: success)."""
    BAD = "red"
    """Failed or cannot work (theme: error)."""
    WARN = "yellow"
    """Needs a look: stopped by someone, not started, not known (theme: warning)."""
    BUSY = "cyan"
    """Under way (theme: primary)."""
    QUIET = "dim"
    """Nothing to see yet, or nothing to do (the text, dimmed)."""


class Look(NamedTuple):
    """How one state is drawn."""

    glyph: str
    tone: Tone


RUN_STATES: dict[RunState, Look] = {
    RunState.PENDING: Look("·", Tone.QUIET),
    RunState.RUNNING: Look("▶", Tone.BUSY),
    RunState.SUCCEEDED: Look("✓", Tone.GOOD),
    RunState.FAILED: Look("✗", Tone.BAD),
    # A clock face: ⌛ is two cells wide, ⧗ and ⏱ are missing from DejaVu Sans Mono.
    RunState.TIMED_OUT: Look("◷", Tone.BAD),
    RunState.CANCELED: Look("⊘", Tone.WARN),
    RunState.SKIPPED: Look("↷", Tone.QUIET),
    RunState.NOT_STARTED: Look("○", Tone.WARN),
    RunState.UNKNOWN: Look("?", Tone.WARN),
}
"""A machine's part of a run."""

WAITING: dict[Waiting, Look] = {
    Waiting.QUEUED: Look("⋯", Tone.QUIET),
    # ‖ reads as a pause; ⏸ is missing from DejaVu Sans Mono.
    Waiting.THROTTLED: Look("‖", Tone.WARN),
}
"""A Pending machine whose start request waits on Azure's budget (a live phase only)."""

LIVE_STATES: dict[LiveState, Look] = {
    **{state: look for state, look in RUN_STATES.items()},
    **{wait: look for wait, look in WAITING.items()},
}
"""What a live run's rows and counts show: a RunState, or a Pending machine's wait."""

HEALTH: dict[HealthStatus, Look] = {
    HealthStatus.READY: Look("✓", Tone.GOOD),
    HealthStatus.NOT_READY: Look("✗", Tone.BAD),
    HealthStatus.DISCONNECTED: Look("⊘", Tone.BAD),
    HealthStatus.UNREACHABLE: Look("↯", Tone.BAD),
    HealthStatus.AGENT_TOO_OLD: Look("⚠", Tone.WARN),
    HealthStatus.BLOCKED: Look("⊗", Tone.WARN),
    HealthStatus.NOT_PERMITTED: Look("⊖", Tone.WARN),
    # ⏻ (power) would say it better but is missing from common terminal fonts.
    HealthStatus.DEALLOCATED: Look("■", Tone.QUIET),
    HealthStatus.UNKNOWN: Look("?", Tone.QUIET),
}
"""A machine's agent (or SSH host), as the fleet screen shows it."""
