"""The budget as the front ends show it: per scope, what waits, what is left, and an ETA."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from core.azure.scope import ThrottleScope


@dataclass(frozen=True, slots=True)
class ScopeState:
    """One (scope, kind) queue, for the front ends."""

    scope: ThrottleScope
    kind: str
    queued: int
    queued_starts: int
    in_flight: int
    remaining: int
    refill_per_second: float
    throttled_for: float
    """Seconds until a 429's ``Retry-After`` ends (0 when not throttled)."""
    throttled: int
    """429s answered for this scope and kind."""


def eta_seconds(states: Iterable[ScopeState]) -> float:
    """Seconds until the queued work is sent: each scope drains its queue at its refill rate
    once its remaining tokens (and any 429 wait) are spent; scopes drain in parallel, so the
    slowest one decides."""
    slowest = 0.0
    for state in states:
        backlog = max(0, state.queued - state.remaining)
        slowest = max(slowest, state.throttled_for + backlog / state.refill_per_second)
    return slowest


def budget_line(states: Iterable[ScopeState]) -> str:
    """One line for a progress display: machines Queued for a write token, scopes Throttled
    (and for how long), what is left of each scope's reads and writes, and the ETA of the
    queued work; empty when the budget holds nothing back and nothing was spent yet.

    ``Queued 120 for a write token · Throttled writes 12 s · ETA 34 s · reads 40 left,
    writes 0 left`` (with several scopes each is named by its subscription's first
    characters). The ETA comes before the counts: a narrow terminal cuts the line's end.
    """
    states = list(states)
    if not states:
        return ""
    # A progress line has a terminal's width: one scope needs no name, several get their
    # subscription's first characters (a GUID would crowd out the counts at 80 columns).
    several = len({state.scope for state in states}) > 1

    def named(scope: ThrottleScope, text: str) -> str:
        return f"{_short(scope)} {text}" if several else text

    parts: list[str] = []
    queued = sum(state.queued_starts for state in states)
    if queued:
        parts.append(f"Queued {queued} for a write token")
    # Whole seconds, rounded up: a block of 0.3 s is still one ("0 s" reads as none).
    throttled = [named(state.scope, f"{state.kind} {math.ceil(state.throttled_for)} s")
                 for state in states if state.throttled_for > 0]
    if throttled:
        parts.append("Throttled " + ", ".join(throttled))
    eta = eta_seconds(states)
    if eta >= 1:
        parts.append(f"ETA {eta:.0f} s")
    left: dict[ThrottleScope, list[str]] = {}
    for state in states:
        if state.kind in ("reads", "writes"):
            left.setdefault(state.scope, []).append(f"{state.kind} {state.remaining} left")
    shown = sorted(left.items(), key=lambda item: str(item[0]))
    parts += [f"{_short(scope)}: {', '.join(counts)}" if several else ", ".join(counts)
              for scope, counts in shown[:3]]
    if len(shown) > 3:
        parts.append(f"(+{len(shown) - 3} more subscriptions)")
    return " · ".join(parts)


def _short(scope: ThrottleScope) -> str:
    """A scope as a progress line names it: a subscription GUID by its first 8 characters."""
    subscription = scope.subscription
    return f"{subscription[:8]}…" if len(subscription) > 12 else subscription
