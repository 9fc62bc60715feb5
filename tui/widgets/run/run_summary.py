"""The run at a glance: machines per state, a progress bar, elapsed time and ETA."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from core.live_counts import LIVE_ORDER, LiveState, is_done, live_counts
from core.model import Run, utc_now
from tui.widgets.run.run_table import STATE_STYLE, duration_text


def counts_text(counts: dict[LiveState, int], *, short: bool = False) -> Text:
    """``⋯ Queued 40 · ▶ Running 12 · ✓ Succeeded 3 …`` in :data:`~core.live_counts.LIVE_ORDER`
    (the RunStates' order, a Pending machine's waits beside Pending); zero counts left out.
    ``short``: glyphs and counts only (``⋯40 ▶12 ✓3``), as the CLI's progress shows them."""
    text = Text()
    for state in LIVE_ORDER:
        count = counts.get(state, 0)
        if not count:
            continue
        if text:
            text.append(" " if short else " · ")
        glyph, style = STATE_STYLE[state]
        text.append(f"{glyph}{count}" if short else f"{glyph} {state.value} {count}",
                    style=style)
    return text


def state_counts(run: Run) -> dict[LiveState, int]:
    """Machines per state, a Pending machine waiting on Azure's budget as its wait."""
    return live_counts(run.machines.values())


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
        self.counts: dict[LiveState, int] = {}
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
        done = sum(n for state, n in counts.items() if is_done(state))
        elapsed = max(0.0, ((run.ended or now) - run.created).total_seconds())
        if run.finished:
            clock = f"ended after {duration_text(elapsed)}"
            if run.stop_reason:
                clock += f" ({run.stop_reason})"
        else:
            eta = eta_seconds(done, total, elapsed)
            clock = f"elapsed {duration_text(elapsed)} · ETA " + (
                duration_text(eta) if eta is not None else "…")
        room = self.query_one("#counts", Static).content_size.width
        drawn = (tuple(counts.items()), done, total, clock, room)
        if drawn == self._drawn:
            return
        self._drawn = drawn
        self.counts = counts
        shown = counts_text(counts)
        if room and shown.cell_len > room:
            # A narrow terminal: every count whole beats the first few named.
            shown = counts_text(counts, short=True)
        # A layout pass costs the whole screen a reflow: only when a width really changes.
        self.query_one("#counts", Static).update(shown, layout=False)
        self.query_one(ProgressBar).update(total=max(total, 1), progress=done)
        clock_text = f"{done}/{total} · {clock}"
        resized = len(clock_text) != len(self._clock_text)
        self._clock_text = clock_text
        self.query_one("#clock", Static).update(clock_text, layout=resized)
