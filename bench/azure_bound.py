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

**A shared budget** (:func:`shared_bound`, bench/azure's ``--compute-limits`` and
``--second-client same``): the reads left to fleetrun are fewer, and the poll schedule meets
them, so the reads' bound is found by playing fleetrun's schedule against them:

- a second client on the same principal spends ``others`` reads per second from the start,
  so fleetrun's reads are the full bucket and then ``reads.rate - others`` per second (the
  k-th read no sooner than ``(k - capacity) / (rate - others)``);
- Compute's operation group (``HighCostGet3Min``: ``allowed`` polls in any ``seconds``) lets
  the k-th poll go no sooner than ``seconds`` after the (k - allowed)-th;
- each machine is polled ``poll`` s after its PUT (the k-th PUT leaves at the writes'
  bound), then ``poll`` s after each poll that did not see its end; polls go first come first
  served at the earliest time both budgets allow, and a poll held back by them that finds the
  machine ended is its last. Durations are spread evenly over the simulated range.

The reads' bound is when the last machine's last poll goes; the ideal is the largest of it,
the writes' and the deletes' bounds. (With ``--second-client other``, the second client is
another principal: its bucket is not fleetrun's, and only the subscription-global bucket,
15 times larger, is shared; the plain bound applies.)
"""

from __future__ import annotations

import heapq
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


@dataclass(frozen=True, slots=True)
class Window:
    """A Compute operation group's window: ``allowed`` requests in any ``seconds``."""

    allowed: int
    seconds: float


def shared_bound(n: int, *, reads: Bucket, writes: Bucket, deletes: Bucket,
                 durations: tuple[float, float], poll: float, others: float = 0.0,
                 window: Window | None = None) -> Bound:
    """One subscription's bound when another client spends ``others`` reads per second of
    fleetrun's bucket and/or Compute's ``window`` counts the polls (the module docstring)."""
    if others >= reads.rate:
        raise ValueError(f"the other client's {others:g} reads/s leave none of {reads.rate:g}")
    if n == 0:
        return Bound(0.0, 0.0, 0.0, 0.0, 0.0)
    longest = durations[1]
    write = writes.seconds_for(n) + longest
    delete = deletes.seconds_for(n)
    spread = durations[1] - durations[0]
    ends: list[float] = []
    heap: list[tuple[float, int]] = []
    for i in range(n):
        put = writes.seconds_for(i + 1)
        ends.append(put + durations[0] + spread * (i + 0.5) / n)
        heapq.heappush(heap, (put + poll, i))
    sent: list[float] = []
    last = 0.0
    rate = reads.rate - others
    while heap:
        due, i = heapq.heappop(heap)
        at = max(due, max(0.0, len(sent) + 1 - reads.capacity) / rate)
        if window is not None and len(sent) >= window.allowed:
            at = max(at, sent[len(sent) - window.allowed] + window.seconds)
        sent.append(at)
        if at >= ends[i]:
            last = max(last, at)
        else:
            heapq.heappush(heap, (at + poll, i))
    return Bound(max(write, last, delete), write, last, delete, float(len(sent)))
