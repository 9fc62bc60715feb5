"""Python's full garbage collections moved to when nobody is typing.

While a thousand machines stream, each machine's pending reads and events live for a
moment, long enough to be promoted to the collector's oldest generation, so Python starts a
full collection about every second, and each walks everything the app holds: 45-70 ms, a
pause that lands on whichever key was pressed then (a twelfth of the keys, so the 95th
percentile key waited for one). Here the automatic full collections are turned off and the
app runs them itself, as often as Python would have started them (after as many
collections of the middle generation), but when no key has come for a moment; if keys never
stop, :data:`MOST_SECONDS` after one became due. Young collections (the cheap ones) run as
before.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

QUIET_SECONDS = 0.4
"""No key for this long: a full collection now is not in anybody's way."""

MOST_SECONDS = 3.0
"""A due collection waits for a quiet moment at most this long."""

CHECK_SECONDS = 0.2
"""How often the app asks :meth:`IdleCollector.tick` (its timer)."""

_NEVER = 1 << 30
"""A third threshold no count reaches: Python starts no full collection by itself."""


class IdleCollector:
    """Runs the full collections that Python would have run, between keys."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_key = -QUIET_SECONDS
        self._due: float | None = None
        """Since when a full collection has been due (None: it is not)."""
        self._thresholds: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Take the full collections over from Python."""
        if self._thresholds is None:
            self._thresholds = gc.get_threshold()
            young, middle, _ = self._thresholds
            gc.set_threshold(young, middle, _NEVER)

    def stop(self) -> None:
        """Give them back (the app is ending)."""
        if self._thresholds is not None:
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def key_pressed(self) -> None:
        self._last_key = self._clock()

    def tick(self) -> bool:
        """Collect fully if it is due and in nobody's way; True if it did."""
        if self._thresholds is None:
            return False
        if gc.get_count()[2] < self._thresholds[2]:
            self._due = None
            return False
        now = self._clock()
        if self._due is None:
            self._due = now
        if now - self._last_key < QUIET_SECONDS and now - self._due < MOST_SECONDS:
            return False
        gc.collect()
        self._due = None
        return True
