"""ARM's throttle budget, spent exactly: what the server last said, minus what was sent since.

ARM keeps token buckets per throttle scope and operation kind (reads 250 refilled at 25/s,
writes and deletes 200 at 10/s; azure-run-command.md section 7.2), a subscription-global
bucket 15 times that size, and Compute adds its own limits per operation group counted over
3- and 30-minute windows (section 7.3). Every answer reports what is left
(``x-ms-ratelimit-remaining-subscription-{kind}``, ``...-global-{kind}``, and
``x-ms-ratelimit-remaining-resource: Microsoft.Compute/HighCostGet3Min;N``).

**The count** of each bucket is the server's last word minus what was sent since, refilled
at the documented rate (:mod:`core.azure.throttle_counts` says how, and why that keeps a
starved client from bursting). A 429 blocks only the bucket (or Compute operation group) it
names, for its ``Retry-After``, and is counted.

**The order.** One priority queue per (scope, kind): kinds draw on separate buckets, so a PUT
never waits for a read token. Within a queue the most valuable request goes first:

1. ``CANCEL``: a DELETE that stops a script the user canceled (someone is waiting, and the
   script keeps running until it lands).
2. ``START``: a PUT that starts a machine. The write budget bounds a large fan-out; each PUT
   held back delays a whole machine.
3. ``OPERATION``: a long-running operation's status (someone waits on its outcome).
4. ``QUIET_POLL``: a poll of a machine whose instance view stopped changing (its output
   stopped growing): it has most likely ended, and the poll delivers its result.
5. ``CHECK``: an agent check or an attach (a machine's state is in doubt).
6. ``POLL``: a poll of a machine still streaming: its blobs already show the progress.
7. ``FIRST_POLL``: the first poll after a PUT: the machine has only just started.
8. ``CLEANUP``: a DELETE of a finished run command (frees a slot, changes no result).

Within a priority, first come first served. Subscriptions pace independently: nothing here is
shared between scopes but the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import itertools
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from core.azure.budget_view import ScopeState, eta_seconds
from core.azure.scope import ThrottleScope
from core.azure.throttle_counts import (
    TokenCount,
    WindowCount,
    header_int,
    ready,
    resource_limits,
    sooner,
    throttled_group,
    window_seconds,
)

__all__ = [
    "KINDS",
    "ArmBudget",
    "BucketLimit",
    "BudgetLimits",
    "Priority",
    "ScopeState",
    "ThrottleScope",
    "Ticket",
    "eta_seconds",
    "kind_of",
    "live_budgets",
    "live_states",
    "resource_limits",
    "throttled_group",
]

Clock = Callable[[], float]
KINDS = ("reads", "writes", "deletes")
GLOBAL_FACTOR = 15
"""ARM's subscription-global bucket is this many times the regional one."""


class Priority(IntEnum):
    """How much a request is worth now; lower goes first (see the module's docstring)."""

    CANCEL = 0
    START = 1
    OPERATION = 2
    QUIET_POLL = 3
    CHECK = 4
    POLL = 5
    FIRST_POLL = 6
    CLEANUP = 7


@dataclass(frozen=True, slots=True)
class BucketLimit:
    capacity: int
    refill_per_second: float


@dataclass(frozen=True, slots=True)
class BudgetLimits:
    """ARM's token-bucket defaults (azure-run-command.md section 7.2)."""

    reads: BucketLimit = BucketLimit(250, 25.0)
    writes: BucketLimit = BucketLimit(200, 10.0)
    deletes: BucketLimit = BucketLimit(200, 10.0)
    reserve: float = 0.05
    """Share of each bucket left for other clients of the subscription (the portal, az)."""

    def for_kind(self, kind: str) -> BucketLimit:
        limit: BucketLimit = getattr(self, kind)
        return limit


def kind_of(method: str) -> str:
    """The bucket an HTTP method draws from, as ARM counts it."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


# ----------------------------------------------------------------------------- the queues


@dataclass(eq=False, slots=True)
class Ticket:
    """One granted request: settle it with the answer (or say it never got one)."""

    budget: ArmBudget
    scope: ThrottleScope
    kind: str
    lane: str
    priority: Priority
    seq: int
    groups: tuple[str, ...] = ()
    granted_at: float = 0.0
    """The budget's clock when the token was taken (the round trip sizes the reserve)."""
    tentative: bool = False
    """Its lane was not heard from: ``groups`` are those it may spend, not those it does."""
    settled: bool = False

    def answered(self, status: int, headers: Mapping[str, str] | Any,
                 retry_after: float = 0.0, body: Any = None) -> None:
        """The server answered ``status`` with ``headers`` (a 429 blocks what it names)."""
        self.budget._settle(self, status, headers, retry_after, body)

    def lost(self) -> None:
        """No answer (a dropped connection, a cancelled call): taken as charged."""
        self.budget._settle(self, 0, {}, 0.0, None)


_Waiter = tuple[int, int, "asyncio.Future[Ticket]"]


@dataclass(slots=True)
class _Queue:
    """One (scope, kind): a heap per lane, so a lane held back by a Compute group does not
    hold back the others (which the scope's own bucket still orders by priority)."""

    scope: ThrottleScope
    kind: str
    lanes: dict[str, list[_Waiter]] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None

    def live(self) -> list[_Waiter]:
        return [w for heap in self.lanes.values() for w in heap if not w[2].done()]

    def best_lane(self, excluded: set[str]) -> str | None:
        best: str | None = None
        for lane, heap in self.lanes.items():
            while heap and heap[0][2].done():
                heapq.heappop(heap)
            if heap and lane not in excluded and (best is None or heap[0] < self.lanes[best][0]):
                best = lane
        return best


_LIVE: weakref.WeakSet[ArmBudget] = weakref.WeakSet()


def live_budgets() -> list[ArmBudget]:
    """Every budget of this process (one per fleet's ARM client), for the progress displays."""
    return list(_LIVE)


def live_states() -> list[ScopeState]:
    """Every scope of every live budget, as it stands: what the progress displays show."""
    return [state for budget in live_budgets() for state in budget.states()]


class ArmBudget:
    """Every throttle scope's queue and counts, shared by every request of a client.

    Args:
        limits: Bucket sizes and refill rates (ARM's defaults unless configured).
        clock: Seconds, monotonic; tests may pass their own (timers still use the loop's).
    """

    def __init__(self, limits: BudgetLimits | None = None, clock: Clock = time.monotonic) -> None:
        self.limits = limits or BudgetLimits()
        self._clock = clock
        self._queues: dict[tuple[ThrottleScope, str], _Queue] = {}
        self._counts: dict[tuple[ThrottleScope, str], TokenCount] = {}
        self._windows: dict[tuple[str, str], WindowCount] = {}
        self._lane_groups: dict[tuple[str, str], tuple[str, ...]] = {}
        """Compute groups each lane was seen to draw on, per subscription."""
        self._lanes_heard: set[tuple[str, str]] = set()
        """Lanes that had an answer (so their groups, if any, are known), per subscription.
        Until then a lane sends one request at a time, a Compute lane gated and counted by
        every group the subscription has: Compute may count it in one (a VM's instance view
        and a run command's may share HighCostGet), and unknown, it would take slots no count
        knows of."""
        self._lane_in_flight: collections.Counter[tuple[str, str]] = collections.Counter()
        self._seq = itertools.count()
        self.throttled_count = 0
        """How many 429s the service answered (a well-paced fan-out keeps this at 0)."""
        self._throttled_by: collections.Counter[tuple[ThrottleScope, str]] = (
            collections.Counter())
        _LIVE.add(self)

    # -- counts -----------------------------------------------------------------------------

    def _count(self, scope: ThrottleScope, kind: str) -> TokenCount:
        key = (scope, kind)
        count = self._counts.get(key)
        if count is None:
            limit = self.limits.for_kind(kind.removeprefix("global-"))
            factor = GLOBAL_FACTOR if kind.startswith("global-") else 1
            capacity = float(limit.capacity * factor)
            # Never reserve the last token: a bucket of one must still let calls through.
            floor = min(capacity * self.limits.reserve, capacity - 1.0)
            count = self._counts[key] = TokenCount(
                capacity, limit.refill_per_second * factor, floor, capacity, self._clock())
        return count

    def _gates(self, scope: ThrottleScope, kind: str, lane: str
               ) -> list[TokenCount | WindowCount]:
        # The global bucket spans the subscription's principals and regions.
        whole = ThrottleScope(scope.subscription)
        gates: list[TokenCount | WindowCount] = [self._count(scope, kind),
                                                 self._count(whole, f"global-{kind}")]
        for group in self._lane_groups.get((scope.subscription, lane), ()):
            window = self._windows.get((scope.subscription, group))
            if window is not None:
                gates.append(window)
        return gates

    # -- acquire ----------------------------------------------------------------------------

    async def acquire(self, scope: ThrottleScope | str, kind: str,
                      priority: Priority = Priority.POLL, lane: str = "") -> Ticket:
        """Wait for a token of ``kind`` in ``scope`` (queued by ``priority``) and take it.

        ``lane`` names the kind of call (``microsoft.compute/runcommands GET``): Compute
        groups learned from its answers gate its later calls. Settle the ticket with the
        answer.
        """
        if isinstance(scope, str):
            scope = ThrottleScope.of(scope)
        queue = self._queues.get((scope, kind))
        if queue is None:
            queue = self._queues[(scope, kind)] = _Queue(scope, kind)
        future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
        heapq.heappush(queue.lanes.setdefault(lane, []),
                       (int(priority), next(self._seq), future))
        self._dispatch(queue)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release(future.result())  # granted just as we were cancelled
            raise

    def rename(self, old: ThrottleScope, new: ThrottleScope) -> None:
        """Count ``old``'s requests as ``new``'s from now on (the client learned its region
        from the first answer), if nothing waits or is in flight in ``old`` and ``new`` is
        not in use yet; otherwise leave both as they are."""
        if old == new or any(s == new for s, _kind in self._queues):
            return
        keys = [key for key in self._queues if key[0] == old]
        if any(self._queues[key].live() or self._count(*key).in_flight for key in keys):
            return
        for _scope, kind in keys:
            queue = self._queues.pop((old, kind))
            if queue.timer is not None:
                queue.timer.cancel()
            self._queues[(new, kind)] = _Queue(new, kind)
            if (old, kind) in self._counts:
                self._counts[(new, kind)] = self._counts.pop((old, kind))
            self._throttled_by[(new, kind)] += self._throttled_by.pop((old, kind), 0)

    def _windows_of(self, subscription: str, groups: Iterable[str]) -> list[WindowCount]:
        return [self._windows[(subscription, g)] for g in groups
                if (subscription, g) in self._windows]

    def _dispatch(self, queue: _Queue) -> None:
        """Grant what the counts allow, best first; then sleep until more can go."""
        if queue.timer is not None:
            queue.timer.cancel()
            queue.timer = None
        now = self._clock()
        scope, kind = queue.scope, queue.kind
        own = (self._count(scope, kind), self._count(ThrottleScope(scope.subscription),
                                                     f"global-{kind}"))
        wake: float | None = None
        held: set[str] = set()
        while (lane := queue.best_lane(held)) is not None:
            at = ready(own, now)
            if at != now:
                wake = sooner(wake, at)
                break  # the scope's own buckets are spent: nobody goes
            groups = self._lane_groups.get((scope.subscription, lane), ())
            windows = self._windows_of(scope.subscription, groups)
            unheard = (scope.subscription, lane) not in self._lanes_heard
            if unheard:
                if self._lane_in_flight[(scope.subscription, lane)]:
                    held.add(lane)  # its settle wakes the queue
                    continue
                if lane.startswith("microsoft.compute/"):
                    # It may spend any Compute group it could meet: counted in them all
                    # (not held by them: it may spend none) until its answer says.
                    groups = tuple(g for s, g in self._windows if s == scope.subscription)
            at = ready(windows, now)
            if at != now:
                wake = sooner(wake, at)
                held.add(lane)  # a Compute group holds this lane: let the others pass
                continue
            priority, seq, future = heapq.heappop(queue.lanes[lane])
            windows = self._windows_of(scope.subscription, groups)
            gates: list[TokenCount | WindowCount] = [*own, *windows]
            for gate in gates:
                gate.in_flight += 1
            self._lane_in_flight[(scope.subscription, lane)] += 1
            future.set_result(Ticket(self, scope, kind, lane, Priority(priority), seq, groups,
                                     now, unheard))
        if wake is not None:
            loop = asyncio.get_running_loop()
            queue.timer = loop.call_later(max(0.0, wake - now), self._dispatch, queue)

    # -- settle -----------------------------------------------------------------------------

    def _settle(self, ticket: Ticket, status: int, headers: Mapping[str, str] | Any,
                retry_after: float, body: Any) -> None:
        if ticket.settled:
            return
        ticket.settled = True
        now = self._clock()
        scope, kind, subscription = ticket.scope, ticket.kind, ticket.scope.subscription
        get = getattr(headers, "get", None)
        for count, name in ((self._count(scope, kind), f"subscription-{kind}"),
                            (self._count(ThrottleScope(subscription), f"global-{kind}"),
                             f"subscription-global-{kind}")):
            value = get(f"x-ms-ratelimit-remaining-{name}") if get else None
            # A 429 was not served, so not charged; a call without an answer may have been.
            count.answer(now, ticket.seq, header_int(value), charged=status != 429,
                         answered=status != 0, round_trip=now - ticket.granted_at)
        self._lane_in_flight[(subscription, ticket.lane)] -= 1
        if status:
            self._lanes_heard.add((subscription, ticket.lane))
        reported = resource_limits(headers) if status else {}
        for group, window in zip(ticket.groups, self._windows_of(subscription, ticket.groups),
                                 strict=True):
            if ticket.tentative and status and group not in reported:
                window.in_flight = max(0, window.in_flight - 1)  # it did not spend this one
                continue
            window.answer(now, ticket.seq, reported.get(group), now - ticket.granted_at)
        self._learn(subscription, ticket.lane, reported)
        if status == 429:
            self.throttled_count += 1
            self._throttled_by[(scope, kind)] += 1
            named = throttled_group(body)
            if named is not None:
                self._learn(subscription, ticket.lane, {named: 0})
                self._windows[(subscription, named)].block(now, retry_after)
            else:
                self._count(scope, kind).block(now, retry_after)
        self._wake(subscription)

    def _release(self, ticket: Ticket) -> None:
        """A granted ticket never sent: its token is back."""
        ticket.settled = True
        subscription = ticket.scope.subscription
        gates: list[TokenCount | WindowCount] = [
            self._count(ticket.scope, ticket.kind),
            self._count(ThrottleScope(subscription), f"global-{ticket.kind}"),
            *self._windows_of(subscription, ticket.groups)]
        for gate in gates:
            gate.in_flight = max(0, gate.in_flight - 1)
        self._lane_in_flight[(subscription, ticket.lane)] -= 1
        self._wake(subscription)

    def _learn(self, subscription: str, lane: str, reported: Mapping[str, int]) -> None:
        if not reported:
            return
        key = (subscription, lane)
        known = self._lane_groups.get(key, ())
        for group, remaining in reported.items():
            if (subscription, group) not in self._windows:
                now, window = self._clock(), window_seconds(group)
                self._windows[(subscription, group)] = WindowCount(
                    window, float(remaining), now, now + window)
            if group not in known:
                known = (*known, group)
        self._lane_groups[key] = known

    def _wake(self, subscription: str) -> None:
        for (scope, _kind), queue in self._queues.items():
            if scope.subscription == subscription and any(queue.lanes.values()):
                self._dispatch(queue)

    def tick(self) -> None:
        """Look at every queue again now (after a clock jump; the timers do it otherwise)."""
        for queue in list(self._queues.values()):
            self._dispatch(queue)

    # -- views ------------------------------------------------------------------------------

    def waiting(self, scope: ThrottleScope | str, kind: str) -> int:
        """Requests queued for a token (how far behind the budget the client is)."""
        if isinstance(scope, str):
            scope = ThrottleScope.of(scope)
        queue = self._queues.get((scope, kind))
        return 0 if queue is None else len(queue.live())

    def rate(self, kind: str) -> float:
        """The sustained rate of ``kind`` per scope, in requests per second."""
        return self.limits.for_kind(kind).refill_per_second

    def states(self) -> list[ScopeState]:
        """Every (scope, kind) queue the client has used: queued, remaining, throttled."""
        now = self._clock()
        states = []
        for (scope, kind), queue in sorted(self._queues.items(), key=lambda i: (
                i[0][0].subscription, i[0][0].principal, i[0][0].region, i[0][1])):
            count = self._count(scope, kind)
            live = queue.live()
            groups = {g for lane in queue.lanes
                      for g in self._lane_groups.get((scope.subscription, lane), ())}
            blocked = max([count.blocked_until, *(
                w.blocked_until for w in self._windows_of(scope.subscription, groups))])
            states.append(ScopeState(
                scope, kind, len(live), sum(1 for p, _s, _f in live if p == Priority.START),
                count.in_flight, max(0, int(count.remaining(now))), count.share_rate(now),
                max(0.0, blocked - now), self._throttled_by[(scope, kind)]))
        return states
