"""A live run at a glance: each machine's state as the progress displays show it.

A Pending machine whose start request waits on the service's budget shows as Queued or
Throttled (:class:`~core.model.Waiting`) instead of Pending; every other machine shows its
:class:`~core.model.RunState`. Pure: the CLI's progress and the app's run screen both count
from here, and a finished run has no waiting machine, so its counts are its RunStates'.
"""

from __future__ import annotations

from collections.abc import Iterable

from core.model import MachineRun, RunState, Waiting

LiveState = RunState | Waiting

LIVE_ORDER: tuple[LiveState, ...] = (
    RunState.PENDING, Waiting.QUEUED, Waiting.THROTTLED,
    *(state for state in RunState if state is not RunState.PENDING))
"""The order counts are shown in: on the way to running, then the RunStates' own order."""


def live_state(mr: MachineRun) -> LiveState:
    """What a machine is doing now: its wait while Pending, else its state."""
    if mr.waiting is not None and mr.state is RunState.PENDING:
        return mr.waiting
    return mr.state


def live_counts(machines: Iterable[MachineRun]) -> dict[LiveState, int]:
    """Machines per live state, in :data:`LIVE_ORDER`, zero counts left out."""
    counts: dict[LiveState, int] = {}
    for mr in machines:
        state = live_state(mr)
        counts[state] = counts.get(state, 0) + 1
    return {state: counts[state] for state in LIVE_ORDER if state in counts}


def is_done(state: LiveState) -> bool:
    """Whether a live state is a machine's end."""
    return isinstance(state, RunState) and state.terminal
