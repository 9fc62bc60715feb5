"""``--fleet`` values as one text, as a run's record keeps them, and back.

Several values are joined with ``,`` (what a person reads in ``fleetrun history``), but an
``ssh:`` node set such as ``ssh:web1,web2`` holds commas itself; when any value does, the
record holds the values as a JSON list instead, so ``attach`` opens the fleet the run had.
"""

from __future__ import annotations

import json
from collections.abc import Sequence


def join_fleet_specs(specs: Sequence[str]) -> str:
    """One text for a run's ``--fleet`` values that :func:`split_fleet_specs` reads back."""
    if any("," in spec for spec in specs) or any(spec.startswith("[") for spec in specs):
        return json.dumps(list(specs))
    return ",".join(specs)


def split_fleet_specs(text: str) -> list[str]:
    """The ``--fleet`` values a run's record holds (none for an empty text)."""
    if text.startswith("["):
        try:
            values = json.loads(text)
        except ValueError:
            values = None
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            return values
    return [spec for spec in text.split(",") if spec]
