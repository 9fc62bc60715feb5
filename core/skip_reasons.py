"""Why machines will be skipped, grouped for a person to read before a run.

Machines that cannot take a command are grouped by health status ("2 blocked", "1 agent too
old"), and within a status by what their health says (detail and remedy), so 40 machines
missing one permission read as one line with one fix, and machines blocked for different
reasons each keep theirs. Generic over :class:`HealthStatus`: a status is named by its own
words (``NotPermitted`` reads "not permitted"), so a new one needs nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.model import HealthStatus, Machine

_WORD = re.compile(r"[A-Z][a-z0-9]*|[a-z0-9]+")


def status_words(status: HealthStatus) -> str:
    """``AgentTooOld`` as "agent too old": the status's own words, in lower case."""
    return " ".join(word.lower() for word in _WORD.findall(status.value)) or status.value


@dataclass(frozen=True, slots=True)
class SkipReason:
    """Machines of one status whose health says the same: why, and what lifts it."""

    detail: str
    remedy: str
    """The commands as one line (``Health.remedy_line``); empty when none is known."""
    machines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SkipGroup:
    """The machines of one health status that will be skipped, and their reasons (the
    largest first)."""

    status: HealthStatus
    machines: tuple[str, ...]
    reasons: tuple[SkipReason, ...]

    @property
    def words(self) -> str:
        return status_words(self.status)


def skip_groups(machines: Iterable[Machine]) -> list[SkipGroup]:
    """The machines that cannot take a command, grouped by status (the largest group first,
    then in the vocabulary's order), each group's machines in the order given."""
    by_status: dict[HealthStatus, list[Machine]] = {}
    for machine in machines:
        if not machine.health.runnable:
            by_status.setdefault(machine.health.status, []).append(machine)
    order = list(HealthStatus)
    groups = []
    for status, members in sorted(by_status.items(),
                                  key=lambda item: (-len(item[1]), order.index(item[0]))):
        reasons: dict[tuple[str, str], list[str]] = {}
        for machine in members:
            key = (machine.health.detail, machine.health.remedy_line)
            reasons.setdefault(key, []).append(machine.name)
        ranked = sorted(reasons.items(), key=lambda item: -len(item[1]))
        groups.append(SkipGroup(
            status, tuple(m.name for m in members),
            tuple(SkipReason(detail, remedy, tuple(names))
                  for (detail, remedy), names in ranked)))
    return groups


def fold_names(names: Sequence[str], width: int) -> str:
    """``a, b, c, … +5 more`` in at most ``width`` characters (20 or more): all of them
    when they fit, else as many as fit and always the first, cut with ``…`` if need be."""
    joined = ", ".join(names)
    if len(joined) <= width:
        return joined
    for shown in range(len(names) - 1, 0, -1):
        text = f"{', '.join(names[:shown])}, … +{len(names) - shown} more"
        if len(text) <= width:
            return text
    rest = f", … +{len(names) - 1} more" if len(names) > 1 else ""
    room = width - len(rest)
    first = names[0] if len(names[0]) <= room else names[0][:max(1, room - 1)] + "…"
    return first + rest
