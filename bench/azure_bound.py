"""The throttle-bound ideal of bench/azure: the earliest a fan-out can end under ARM's buckets.

Each subscription has its own buckets (reads 250 then 25/s, writes and deletes 200 then
10/s by default), so a fleet spread over K subscriptions ends when its slowest subscription
does. Within one, every machine needs

- one **write** (the PUT) and one **delete** (the run command's clean-up): the last PUT goes
  out no sooner than ``(n - writes.capacity) / writes.rate`` s and its machine runs up to the
  longest simulated duration after it; the deletes' bound is computed the same way;
- the **reads** of fleetrun's poll schedule: a machine running ``d`` s is polled every
  ``poll`` s from its PUT on, so it takes ``ceil(d / poll)`` GETs to see its end, averaged
  over the simulated durations (uniform between the shortest and the longest). All of them
  cannot leave before ``(reads needed - reads.capacity) / reads.rate`` s.

The ideal is the largest of the three. At 200 VMs the reads bind (the writes fit in the
first bucket); at 1,000 the writes do.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    capacity: int
    rate: float

    def seconds_for(self, requests: float) -> float:
        """The earliest the last of ``requests`` can leave: a full bucket, then the refill."""
        return max(0.0, requests - self.capacity) / self.rate


@dataclass(frozen=True, slots=True)
class Bound:
    """One subscription's bound, and which budget sets it."""

    seconds: float
    writes: float
    reads: float
    deletes: float
    reads_needed: float

    @property
    def binding(self) -> str:
        by = {"writes": self.writes, "reads": self.reads, "deletes": self.deletes}
        return max(by, key=lambda kind: by[kind])


def polls_per_machine(shortest: float, longest: float, poll: float, samples: int = 1000) -> float:
    """The mean of ``ceil(d / poll)`` over durations ``d`` uniform in [shortest, longest]."""
    if longest <= shortest:
        return float(max(1, math.ceil(longest / poll)))
    step = (longest - shortest) / samples
    total = sum(max(1, math.ceil((shortest + (i + 0.5) * step) / poll)) for i in range(samples))
    return total / samples


def subscription_bound(n: int, *, reads: Bucket, writes: Bucket, deletes: Bucket,
                       durations: tuple[float, float], poll: float) -> Bound:
    """The throttle bound of ``n`` machines in one subscription (see the module docstring)."""
    longest = durations[1]
    needed = n * polls_per_machine(durations[0], longest, poll)
    write = writes.seconds_for(n) + longest if n else 0.0
    delete = deletes.seconds_for(n)
    read = reads.seconds_for(needed)
    return Bound(max(write, read, delete), write, read, delete, needed)


def fleet_bound(counts: list[int], *, reads: Bucket, writes: Bucket, deletes: Bucket,
                durations: tuple[float, float], poll: float) -> Bound:
    """The slowest subscription's bound: subscriptions pace in parallel."""
    bounds = [subscription_bound(n, reads=reads, writes=writes, deletes=deletes,
                                 durations=durations, poll=poll) for n in counts]
    return max(bounds, key=lambda bound: bound.seconds)
