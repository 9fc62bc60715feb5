"""The throttle-bound ideal of bench/azure: the earliest a fan-out can end under ARM's buckets.

Each subscription has its own buckets (reads 250 then 25/s, writes and deletes 200 then
10/s by default; each starts full and refills continuously up to its capacity), so a fleet
spread over K subscriptions ends when its slowest subscription does. Within one, every
machine needs

- one **write** (the PUT): the last PUT goes out no sooner than
  ``(n - writes.capacity) / writes.rate`` s, and its machine runs up to the longest simulated
  duration after it;
- the **reads** of fleetrun's poll schedule (``core/backends/managed.py``): a machine's first
  poll falls due one poll interval after its PUT, each next one an interval after the last
  was answered, until one finds the run ended. The floor is what the *best* client with that
  schedule needs, not what ours sends: :func:`schedule_floor` plays the schedule out against
  the read bucket for a client that costs no time itself: each PUT leaves as soon as the
  write bucket allows, each poll when it falls due or, with the bucket empty, as soon as a
  token is back, in the order they fall due. A poll held back by the bucket sees more runs
  ended, so under contention a machine needs fewer polls than ``ceil(d / poll)``: counting
  those (as this bound once did) overstated the reads and made the reads bind at 1,000 VMs,
  where the writes do. The reads' bound is when the last machine's end is seen.

  An answer's round trip and the client's own delays lengthen each poll's cycle, and where
  the reads bind a longer cycle wastes fewer of them on runs still going: at 200 VMs a 2 s
  cycle sees the last end at 4.0 s, a 1 s one at 8.7 s. So the floor is the best over cycles
  from one poll interval to two (:func:`best_cycle_floor`); longer ones would break the
  schedule's promise of a result within about an interval of a machine's end;
- one **delete** once its end is seen, through the delete bucket in the order the ends are
  seen.

Durations are uniform between the shortest and the longest, spread over the machines in PUT
order by a low-discrepancy sequence (each second's PUTs get short and long runs alike, as
the sandbox's random draws do on average).

The ideal is the largest of the three. At 200 VMs the reads bind (every first poll is due at
once, and the second ones wait for the refill); at 1,000 the writes do.

**A shared budget** (:func:`shared_bound`, bench/azure's ``--compute-limits`` and
``--second-client same``): fewer reads are left to fleetrun, and :func:`schedule_floor`
plays the same schedule against what is left:

- a second client on the same principal spends ``others`` reads per second from the start,
  so fleetrun's reads are the full bucket and then ``reads.rate - others`` per second;
- Compute's operation group (``HighCostGet3Min``: ``allowed`` polls in any ``seconds``) lets
  the k-th poll go no sooner than ``seconds`` after the (k - allowed)-th.

With ``--second-client other``, the second client is another principal: its bucket is not
fleetrun's, and only the subscription-global bucket, 15 times larger, is shared; the plain
bound applies.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass

GOLDEN = (math.sqrt(5) - 1) / 2
"""The step of the low-discrepancy sequence that spreads durations over the machines."""
_EPSILON = 1e-9
"""Float slack when a poll lands exactly on a run's end."""


@dataclass(frozen=True, slots=True)
class Bucket:
    capacity: int
    rate: float

    def seconds_for(self, requests: float) -> float:
        """The earliest the last of ``requests`` can leave: a full bucket, then the refill."""
        return max(0.0, requests - self.capacity) / self.rate

    def send_times(self, wanted: Iterable[float]) -> list[float]:
        """When requests wanted at ``wanted`` (in order, not decreasing) can each leave."""
        return list(_Tokens(self).take_all(wanted))


class _Tokens:
    """A bucket's tokens over time: full at 0, refilled continuously up to its capacity."""

    def __init__(self, bucket: Bucket) -> None:
        self.bucket = bucket
        self.tokens = float(bucket.capacity)
        self.at = 0.0

    def take(self, wanted: float) -> float:
        """Spend one token for a request wanted at ``wanted`` (never before the last one
        taken); return when it leaves."""
        now = max(wanted, self.at)
        tokens = min(self.bucket.capacity, self.tokens + (now - self.at) * self.bucket.rate)
        if tokens < 1.0:
            now += (1.0 - tokens) / self.bucket.rate
            tokens = 1.0
        self.tokens, self.at = tokens - 1.0, now
        return now

    def take_all(self, wanted: Iterable[float]) -> Iterable[float]:
        return (self.take(moment) for moment in wanted)


@dataclass(frozen=True, slots=True)
class Window:
    """A Compute operation group's window: ``allowed`` requests in any ``seconds``."""

    allowed: int
    seconds: float


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


@dataclass(frozen=True, slots=True)
class ScheduleFloor:
    """The best client's reads under fleetrun's poll schedule (:func:`schedule_floor`)."""

    reads: int
    """Polls sent in all."""
    last_seen: float
    """When the last machine's end was seen (seconds from the first PUT)."""
    last_deleted: float
    """When the last DELETE could leave."""


def durations_of(n: int, shortest: float, longest: float) -> list[float]:
    """``n`` durations uniform in [shortest, longest], spread over PUT order."""
    span = longest - shortest
    return [shortest + span * (((i + 0.5) * GOLDEN) % 1.0) for i in range(n)]


def polls_per_machine(shortest: float, longest: float, poll: float, samples: int = 1000) -> float:
    """The mean of ``ceil(d / poll)`` over durations ``d`` uniform in [shortest, longest]:
    the polls a machine needs when no poll waits for a token (more than under contention)."""
    if longest <= shortest:
        return float(max(1, math.ceil(longest / poll)))
    step = (longest - shortest) / samples
    total = sum(max(1, math.ceil((shortest + (i + 0.5) * step) / poll)) for i in range(samples))
    return total / samples


def schedule_floor(n: int, *, reads: Bucket, writes: Bucket, deletes: Bucket,
                   durations: tuple[float, float], poll: float, others: float = 0.0,
                   window: Window | None = None) -> ScheduleFloor:
    """Play fleetrun's poll schedule out for the best client (see the module docstring);
    ``others`` reads per second go to another client, ``window`` counts every poll."""
    if others >= reads.rate:
        raise ValueError(f"the other client's {others:g} reads/s leave none of {reads.rate:g}")
    if n == 0:
        return ScheduleFloor(0, 0.0, 0.0)
    puts = writes.send_times([0.0] * n)
    ends = [put + d for put, d in zip(puts, durations_of(n, *durations), strict=True)]
    due = [(put + poll, i) for i, put in enumerate(puts)]
    heapq.heapify(due)
    tokens = _Tokens(Bucket(reads.capacity, reads.rate - others))
    sent, seen = 0, []
    times: list[float] = []
    while due:
        moment, i = heapq.heappop(due)
        if window is not None and len(times) >= window.allowed:
            moment = max(moment, times[len(times) - window.allowed] + window.seconds)
        answered = tokens.take(moment)
        times.append(answered)
        sent += 1
        if answered + _EPSILON >= ends[i]:
            seen.append(answered)
        else:
            heapq.heappush(due, (answered + poll, i))
    # ``seen`` is in the order the ends were seen, which is the order the DELETEs go in.
    removed = deletes.send_times(seen)
    return ScheduleFloor(sent, seen[-1], removed[-1])


CYCLE_STEPS = 10
"""Cycles tried between one poll interval and two (see the module docstring)."""


def best_cycle_floor(n: int, *, reads: Bucket, writes: Bucket, deletes: Bucket,
                     durations: tuple[float, float], poll: float, others: float = 0.0,
                     window: Window | None = None) -> ScheduleFloor:
    """The :func:`schedule_floor` whose poll cycle, between ``poll`` and ``2 * poll``, ends
    soonest (its reads and deletes both done); the shortest cycle of those that tie."""
    floors = [schedule_floor(n, reads=reads, writes=writes, deletes=deletes,
                             durations=durations, poll=poll * (1 + step / CYCLE_STEPS),
                             others=others, window=window)
              for step in range(CYCLE_STEPS + 1)]
    return min(floors, key=lambda floor: round(max(floor.last_seen, floor.last_deleted), 6))


def subscription_bound(n: int, *, reads: Bucket, writes: Bucket, deletes: Bucket,
                       durations: tuple[float, float], poll: float, others: float = 0.0,
                       window: Window | None = None) -> Bound:
    """The throttle bound of ``n`` machines in one subscription (see the module docstring)."""
    floor = best_cycle_floor(n, reads=reads, writes=writes, deletes=deletes,
                             durations=durations, poll=poll, others=others, window=window)
    write = writes.seconds_for(n) + durations[1] if n else 0.0
    # To the microsecond: a read landing on the last run's end must not outbid the writes.
    read, delete = round(floor.last_seen, 6), round(floor.last_deleted, 6)
    return Bound(max(write, read, delete), write, read, delete, floor.reads)


def fleet_bound(counts: list[int], *, reads: Bucket, writes: Bucket, deletes: Bucket,
                durations: tuple[float, float], poll: float) -> Bound:
    """The slowest subscription's bound: subscriptions pace in parallel."""
    bounds = [subscription_bound(n, reads=reads, writes=writes, deletes=deletes,
                                 durations=durations, poll=poll) for n in counts]
    return max(bounds, key=lambda bound: bound.seconds)


def shared_bound(n: int, *, reads: Bucket, writes: Bucket, deletes: Bucket,
                 durations: tuple[float, float], poll: float, others: float = 0.0,
                 window: Window | None = None) -> Bound:
    """One subscription's bound when another client spends ``others`` reads per second of
    fleetrun's bucket and/or Compute's ``window`` counts the polls (the module docstring)."""
    return subscription_bound(n, reads=reads, writes=writes, deletes=deletes,
                              durations=durations, poll=poll, others=others, window=window)
