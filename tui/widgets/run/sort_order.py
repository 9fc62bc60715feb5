"""How the run table sorts its machines: by a column's value (not its drawn text), stably.

Ties keep the run's order, so a sort is the same every time for the same values, and a
reversed sort is the same groups of ties the other way round, each tie still in run order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from core.live_counts import LIVE_ORDER, live_state
from core.model import MachineId, MachineRun

SortKey = tuple[int, float | str]
"""(missing last, value): a machine without the value (no exit yet) sorts after the rest."""

CYCLE: tuple[str, ...] = ("state", "elapsed", "exit", "out", "machine")
"""The columns ``o`` goes through, in this order, then back to the run's order."""

_STATE_RANK = {state: rank for rank, state in enumerate(LIVE_ORDER)}


def _value(column: str, mr: MachineRun, now: datetime | None) -> float | str | None:
    if column == "state":
        return _STATE_RANK.get(live_state(mr), len(_STATE_RANK))
    if column == "machine":
        return mr.machine.name.casefold()
    if column == "elapsed":
        return mr.elapsed(now)
    if column == "exit":
        return mr.exit_code
    if column == "out":
        return mr.stdout_bytes
    if column == "err":
        return mr.stderr_bytes
    if column == "error":
        return mr.error.casefold() or None
    raise ValueError(f"no such column: {column}")


def sort_key(column: str, now: datetime | None) -> Callable[[MachineRun], SortKey]:
    def key(mr: MachineRun) -> SortKey:
        value = _value(column, mr, now)
        return (1, 0.0) if value is None else (0, value)
    return key


@dataclass(frozen=True)
class SortOrder:
    """A column to sort by (None: the run's own order) and which way."""

    column: str | None = None
    descending: bool = False

    def next(self) -> SortOrder:
        """The next column of :data:`CYCLE` (after the last: the run's order), ascending."""
        if self.column not in CYCLE:
            return SortOrder(CYCLE[0])
        position = CYCLE.index(self.column) + 1
        return SortOrder(CYCLE[position] if position < len(CYCLE) else None)

    def reversed(self) -> SortOrder:
        return SortOrder(self.column, not self.descending)

    def by(self, column: str) -> SortOrder:
        """Sort by ``column``; the column already sorted by: the other way round."""
        if column == self.column:
            return self.reversed()
        return SortOrder(column)

    def arrange(self, machines: dict[MachineId, MachineRun], now: datetime | None
                ) -> list[MachineId]:
        """The machine ids in this order (``machines`` is in the run's order)."""
        if self.column is None:
            return list(machines)
        key = sort_key(self.column, now)
        runs: Sequence[MachineRun] = sorted(machines.values(), key=key,
                                            reverse=self.descending)
        if self.descending:
            # reverse=True keeps ties in their first order, but missing values go first:
            # they go last whichever way the sort goes.
            runs = [mr for mr in runs if key(mr)[0] == 0] + [mr for mr in runs if key(mr)[0]]
        return [mr.machine_id for mr in runs]

    def label(self) -> str:
        if self.column is None:
            return "run order"
        return f"{self.column} {'▼' if self.descending else '▲'}"
