"""The run at a glance: machines per state, a progress bar, elapsed time and ETA."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from core.model import Run, RunState, utc_now
from tui.widgets.run.run_table import STATE_STYLE, duration_text


def counts_text(counts: dict[RunState, int]) -> Text:
    """``✓ Succeeded 3 · ✗ Failed 1 …`` in the order of :class:`RunState`; zero counts left out."""
    text = Text()
    for state in RunState:
        count = counts.get(state, 0)
        if not count:
            continue
        if text:
            text.append(" · ")
        glyph, style = STATE_STYLE[state]
        text.append(f"{glyph} {state.value} {count}", style=style)
    return text


def state_counts(run: Run) -> dict[RunState, int]:
    counts: dict[RunState, int] = {}
    for mr in run.machines.values():
        counts[mr.state] = counts.get(mr.state, 0) + 1
    return counts


def eta_seconds(done: int, total: int, elapsed: float) -> float | None:
    """Time left at the pace so far; None before anything finished."""
    if done == 0 or total == 0:
        return None
    return elapsed * (total - done) / done


class RunSummary(Horizontal):
    """Counts per state, overall progress, elapsed and ETA (or how the run ended)."""

    DEFAULT_CSS = """
    RunSummary { height: 1; padding: 0 1; }
    RunSummary #counts { width: 1fr; }
    RunSummary ProgressBar { width: auto; padding: 0 1; }
    RunSummary #clock { width: auto; color: $text-muted; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._drawn: tuple[object, ...] = ()
        self.counts: dict[RunState, int] = {}
        self._clock_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="counts")
        yield ProgressBar(show_eta=False, id="progress")
        yield Static(id="clock")

    def refresh_from(self, run: Run, now: datetime | None = None) -> None:
        """Redraw from the run state (only the parts that changed)."""
        now = now or utc_now()
        counts = state_counts(run)
        total = len(run.machines)
        done = sum(n for state, n in counts.items() if state.terminal)
        elapsed = max(0.0, ((run.ended or now) - run.created).total_seconds())
        if run.finished:
            clock = f"ended after {duration_text(elapsed)}"
            if run.stop_reason:
                clock += f" ({run.stop_reason})"
        else:
            eta = eta_seconds(done, total, elapsed)
            clock = f"elapsed {duration_text(elapsed)} · ETA " + (
                duration_text(eta) if eta is not None else "…")
        drawn = (tuple(sorted(counts.items())), done, total, clock)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.counts = counts
        # A layout pass costs the whole screen a reflow: only when a width really changes.
        self.query_one("#counts", Static).update(counts_text(counts), layout=False)
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)
        clock_text = f"{done}/{total} · {clock}"
        resized = len(clock_text) != len(self._clock_text)
        self._clock_text = clock_text
        self.query_one("#clock", Static).update(clock_text, layout=resized)
