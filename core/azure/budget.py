"""ARM's throttle budget, spent exactly: what the server last said, minus what was sent since.

ARM keeps token buckets per throttle scope and operation kind (reads 250 refilled at 25/s,
writes and deletes 200 at 10/s; azure-run-command.md section 7.2), a subscription-global
bucket 15 times that size, and Compute adds its own limits per operation group counted over
3- and 30-minute windows (section 7.3). Every answer reports what is left
(``x-ms-ratelimit-remaining-subscription-{kind}``, ``...-global-{kind}``, and
``x-ms-ratelimit-remaining-resource: Microsoft.Compute/HighCostGet3Min;N``).

**The count.** A bucket's tokens are the server's last word, refilled at the documented rate
(capped at the bucket's size, as the server caps it), minus every request granted and not yet
answered. The server charges a request when it *arrives*, which can be long after the client
granted it (a starved event loop, a queue for a pooled connection); counting it as spent
until its answer says what the server made of it is what keeps a starved client from
believing in refill the server never banked (its bucket was full) and releasing a burst the
server refuses. Until a bucket's first answer, one request at a time goes out: another client
may already have spent the bucket. A 429 blocks only the bucket (or Compute operation group)
it names, for its ``Retry-After``, and is counted.

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
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

Clock = Callable[[], float]
KINDS = ("reads", "writes", "deletes")
GLOBAL_FACTOR = 15
"""ARM's subscription-global bucket is this many times the regional one."""
RESOURCE_HEADER = "x-ms-ratelimit-remaining-resource"
FOREIGN_MEMORY = 5.0
"""Seconds over which other clients' spending of a bucket is averaged."""
_WINDOW = re.compile(r"(\d+)\s*min$", re.IGNORECASE)


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


@dataclass(frozen=True, slots=True)
class ThrottleScope:
    """Where ARM counts a request: subscription, principal and ARM region (2024 model).

    One client is one principal talking to one ARM region, so the last two are the client's
    (empty when unknown); the subscription comes from each request's path.
    """

    subscription: str
    principal: str = ""
    region: str = ""

    @classmethod
    def of(cls, subscription: str, principal: str = "", region: str = "") -> ThrottleScope:
        return cls(subscription.lower(), principal.lower(), region.lower())

    def __str__(self) -> str:
        extra = "/".join(part for part in (self.principal, self.region) if part)
        return f"{self.subscription}{' (' + extra + ')' if extra else ''}"


def kind_of(method: str) -> str:
    """The bucket an HTTP method draws from, as ARM counts it."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return "reads"
    return "deletes" if method == "DELETE" else "writes"


def resource_limits(headers: Mapping[str, str] | Any) -> dict[str, int]:
    """Compute's ``x-ms-ratelimit-remaining-resource`` entries: policy name -> remaining.

    The header may repeat, and one value may list several ``Policy;N`` entries separated by
    commas; unreadable entries are skipped.
    """
    get_list = getattr(headers, "get_list", None)
    values = get_list(RESOURCE_HEADER) if get_list else [headers.get(RESOURCE_HEADER) or ""]
    found: dict[str, int] = {}
    for value in values:
        for entry in str(value).split(","):
            policy, _, count = entry.strip().rpartition(";")
            try:
                remaining = int(count)
            except ValueError:
                continue
            if policy:
                found[policy.strip()] = remaining
    return found


def throttled_group(body: Any) -> str | None:
    """The Compute operation group a 429's body names (``Microsoft.Compute/HighCostGet30Min``)."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    details = inner.get("details") if isinstance(inner, dict) else None
    for detail in details if isinstance(details, list) else ():
        message = detail.get("message") if isinstance(detail, dict) else None
        try:
            group = json.loads(message).get("operationGroup") if message else None
        except (ValueError, AttributeError):
            continue
        if isinstance(group, str) and group:
            return group if "/" in group else f"Microsoft.Compute/{group}"
    return None


def window_seconds(policy: str) -> float:
    """The counting window a Compute policy's name states (``...3Min``: 180 s)."""
    found = _WINDOW.search(policy)
    return float(found.group(1)) * 60 if found else 60.0


# ----------------------------------------------------------------------------- the counts


@dataclass(slots=True)
class TokenCount:
    """One ARM token bucket as the client knows it."""

    capacity: float
    refill_per_second: float
    floor: float
    reported: float
    reported_at: float
    answered: bool = False
    """Whether any answer came back yet (until then, one request at a time)."""
    in_flight: int = 0
    blocked_until: float = 0.0
    newest: int = -1
    """Sequence number of the request whose header set ``reported``."""
    charged_since: int = 0
    """Our requests the server charged since ``reported`` (their answers came back)."""
    foreign: float = 0.0
    """Tokens others spent, decaying over :data:`FOREIGN_MEMORY` seconds (rate x memory)."""
    most_reported: float = -1.0
    """The highest count the server ever reported: its bucket is at least one bigger."""

    def _floor(self) -> float:
        """The reserve, scaled down when the server's bucket proves smaller than configured."""
        if self.most_reported < 0:
            return self.floor
        return self.floor * min(1.0, (self.most_reported + 1.0) / self.capacity)

    def _expected(self, now: float) -> float:
        """The count the server would show now if nobody else spent from it."""
        size = self.capacity if self.most_reported < 0 else min(self.capacity,
                                                                self.most_reported + 1.0)
        return min(size, self.reported + self.refill_per_second * (now - self.reported_at))

    def share_rate(self) -> float:
        """The refill this client may count on: the bucket's, less what others were seen to
        spend (their spending shows as drops in the count that our requests do not explain)."""
        others = max(0.0, self.foreign / FOREIGN_MEMORY)
        return max(self.refill_per_second * 0.05, self.refill_per_second - others)

    def server_tokens(self, now: float) -> float:
        return min(self.capacity, self.reported + self.refill_per_second * (now - self.reported_at))

    def remaining(self, now: float) -> float:
        return self.server_tokens(now) - self.in_flight

    def spendable(self, now: float) -> float:
        """Tokens this client may send now: the server's count less the reserve, of which only
        half of what was banked (another client may have read the same count), plus what
        refilled since; less what is in flight."""
        refilled = self.share_rate() * (now - self.reported_at)
        floor = self._floor()
        share = (self.reported - floor) / 2 + refilled
        return min(self.server_tokens(now) - floor, share) - self.in_flight

    def ready_at(self, now: float) -> float | None:
        """When one more request may go (``now`` or later); None: wait for an answer."""
        if not self.answered and self.in_flight:
            return None
        missing = 1.0 - self.spendable(now)
        if missing > 0 and 1.0 + self._floor() + self.in_flight > self.capacity:
            return None  # refill cannot free this much; only answers can
        wait = missing / self.share_rate() if missing > 0 else 0.0
        return max(now + wait, self.blocked_until)

    def answer(self, now: float, seq: int, remaining: int | None, *, charged: bool,
               answered: bool = True) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.answered = self.answered or answered
        self.charged_since += charged
        if remaining is not None and seq > self.newest:
            if self.newest >= 0:  # the count it replaces was the server's too, not a guess
                expected = self._expected(now) - self.charged_since
                decay = math.exp(-(now - self.reported_at) / FOREIGN_MEMORY)
                self.foreign = self.foreign * decay + expected - remaining
            # The server's word, at the latest time it can have been true: no refill credit
            # for the answer's way back.
            self.reported, self.reported_at, self.newest = float(remaining), now, seq
            self.most_reported = max(self.most_reported, self.reported)
            self.charged_since = 0
        elif remaining is not None and remaining < self.server_tokens(now):
            self.reported, self.reported_at = float(remaining), now
        elif charged:
            self.reported = self.server_tokens(now) - 1.0
            self.reported_at = now

    def block(self, now: float, seconds: float) -> None:
        self.reported, self.reported_at = 0.0, now
        self.blocked_until = max(self.blocked_until, now + seconds)


@dataclass(slots=True)
class WindowCount:
    """A Compute operation group: N requests per window, its refill unknown.

    Refill is only what the client itself can prove: a request of ours frees its slot one
    window after it was answered (a sliding window; a fixed one frees earlier). A window after
    the server's last word, the group is presumed fresh and probed with one request.
    """

    window: float
    reported: float
    reported_at: float
    probe_at: float = 0.0
    """When the group is presumed fresh again (a window after its last word, or when a
    429's ``Retry-After`` ends), and one request may probe it."""
    in_flight: int = 0
    blocked_until: float = 0.0
    newest: int = -1
    sends: collections.deque[float] = field(default_factory=collections.deque)

    def _aged(self, now: float) -> int:
        while self.sends and self.sends[0] < self.reported_at - self.window:
            self.sends.popleft()
        return sum(1 for t in self.sends if t + self.window <= now)

    def remaining(self, now: float) -> float:
        return self.reported + self._aged(now) - self.in_flight

    def ready_at(self, now: float) -> float | None:
        if self.remaining(now) >= 1.0:
            return max(now, self.blocked_until)
        fresh = self.probe_at or self.reported_at + self.window
        if now >= fresh:
            return None if self.in_flight else max(now, self.blocked_until)
        frees = [t + self.window for t in self.sends if t + self.window > now]
        return max(min([*frees, fresh]), self.blocked_until)

    def answer(self, now: float, seq: int, remaining: int | None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.sends.append(now)
        if remaining is not None and (seq > self.newest or remaining < self.remaining(now)):
            self.reported, self.reported_at, self.newest = float(remaining), now, max(
                self.newest, seq)
            self.probe_at = now + self.window
            self.sends.clear()
        elif remaining is None:
            self.reported -= 1.0

    def block(self, now: float, seconds: float) -> None:
        self.reported, self.reported_at = 0.0, now
        self.sends.clear()
        self.blocked_until = max(self.blocked_until, now + seconds)
        self.probe_at = self.blocked_until


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
        self._seq = itertools.count()
        self.throttled_count = 0
        """How many 429s the service answered (a well-paced fan-out keeps this at 0)."""
        self._throttled_by: collections.Counter[tuple[ThrottleScope, str]] = (
            collections.Counter())

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

        ``lane`` names the kind of call (``microsoft.compute GET``): Compute groups learned
        from its answers gate its later calls. Settle the ticket with the answer.
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
            at = _ready(own, now)
            if at != now:
                wake = _sooner(wake, at)
                break  # the scope's own buckets are spent: nobody goes
            groups = self._lane_groups.get((scope.subscription, lane), ())
            windows = self._windows_of(scope.subscription, groups)
            at = _ready(windows, now)
            if at != now:
                wake = _sooner(wake, at)
                held.add(lane)  # a Compute group holds this lane: let the others pass
                continue
            priority, seq, future = heapq.heappop(queue.lanes[lane])
            gates: list[TokenCount | WindowCount] = [*own, *windows]
            for gate in gates:
                gate.in_flight += 1
            future.set_result(Ticket(self, scope, kind, lane, Priority(priority), seq, groups))
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
            count.answer(now, ticket.seq, _int(value), charged=status != 429,
                         answered=status != 0)
        reported = resource_limits(headers) if status else {}
        for group, window in zip(ticket.groups, self._windows_of(subscription, ticket.groups),
                                 strict=True):
            window.answer(now, ticket.seq, reported.get(group))
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
                count.in_flight, max(0, int(count.remaining(now))), count.share_rate(),
                max(0.0, blocked - now), self._throttled_by[(scope, kind)]))
        return states


def _ready(gates: Iterable[TokenCount | WindowCount], now: float) -> float | None:
    """When all ``gates`` let one more request go: ``now``, later, or None (an answer must
    come first)."""
    latest = now
    for gate in gates:
        at = gate.ready_at(now)
        if at is None:
            return None
        latest = max(latest, at)
    return latest


def _sooner(wake: float | None, at: float | None) -> float | None:
    if at is None:
        return wake
    return at if wake is None else min(wake, at)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def eta_seconds(states: Iterable[ScopeState]) -> float:
    """Seconds until the queued work is sent: each scope drains its queue at its refill rate
    once its remaining tokens (and any 429 wait) are spent; scopes drain in parallel, so the
    slowest one decides."""
    slowest = 0.0
    for state in states:
        backlog = max(0, state.queued - state.remaining)
        slowest = max(slowest, state.throttled_for + backlog / state.refill_per_second)
    return slowest
