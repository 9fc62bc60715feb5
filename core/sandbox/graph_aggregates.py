"""The aggregation functions ``summarize`` takes in the sandbox's KQL subset.

Kusto's rules (learn.microsoft.com/kusto "summarize operator" and the aggregation function
pages): ``count()`` counts rows, ``countif(p)`` rows where ``p`` is true, ``dcount(x)``
distinct non-empty values (exact here; Kusto estimates, exactly at these sizes); ``sum``,
``min`` and ``max`` skip nulls, and over no values give null here (Kusto's answer for an
all-null ``sum`` is UNCONFIRMED). An unnamed aggregate's column is ``count_``, ``countif_``,
or ``<function>_<argument column>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Aggregate:
    """One ``summarize`` function: how many arguments, its result type, and what it computes.

    ``result`` is an ARG column type, or None for "the argument's type" (``min``/``max``).
    ``compute`` receives the argument's value for every row of the group (``count`` gets
    none: it receives one ``None`` per row).
    """

    arity: int
    result: str | None
    compute: Callable[[list[Any]], Any]


def _present(values: list[Any]) -> list[Any]:
    return [v for v in values if v is not None and v != ""]


def _numbers(values: list[Any]) -> list[int | float]:
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _dcount(values: list[Any]) -> int:
    return len({json.dumps(v, sort_keys=True) for v in _present(values)})


def _extreme(pick: Callable[..., Any]) -> Callable[[list[Any]], Any]:
    def compute(values: list[Any]) -> Any:
        present = _present(values)
        numbers = _numbers(present)
        if numbers:
            return pick(numbers)
        strings = [v for v in present if isinstance(v, str)]
        return pick(strings) if strings else None
    return compute


def _sum(values: list[Any]) -> int | float | None:
    numbers = _numbers(values)
    return sum(numbers) if numbers else None


AGGREGATES: dict[str, Aggregate] = {
    "count": Aggregate(0, "integer", len),
    "countif": Aggregate(1, "integer", lambda vs: sum(1 for v in vs if v is True)),
    "dcount": Aggregate(1, "integer", _dcount),
    "sum": Aggregate(1, None, _sum),
    "min": Aggregate(1, None, _extreme(min)),
    "max": Aggregate(1, None, _extreme(max)),
}


def default_name(function: str, argument: str | None) -> str | None:
    """The column Kusto names an unnamed aggregate (None: it needs a name here)."""
    if function in ("count", "countif"):
        return f"{function}_"
    return f"{function}_{argument}" if argument else None


def group_key(values: tuple[Any, ...]) -> str:
    """A hashable key for a group's by-values (null and "" stay apart)."""
    return json.dumps(values, sort_keys=True, default=str)
