"""A client-side mirror of ARM's throttle buckets, so a fan-out paces itself instead of 429ing.

ARM keeps token buckets per subscription and operation kind (reads 250 refilled at 25/s,
writes and deletes 200 at 10/s) and reports what is left in ``x-ms-ratelimit-remaining-
subscription-*`` on every answer. :class:`ArmBudget` keeps the same buckets locally: a request
takes a token before it is sent, waits in FIFO order when none is left, and the headers pull
the local count down whenever the service knows of more spending (other clients, other
processes). A 429 empties the bucket and blocks it for ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]
KINDS = ("reads", "writes", "deletes")


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


@dataclass(slots=True)
class _Bucket:
    limit: BucketLimit
    floor: float
    clock: Clock
    tokens: float = -1.0
    updated: float = 0.0
    blocked_until: float = 0.0
    waiters: collections.deque[asyncio.Future[None]] = field(default_factory=collections.deque)
    timer: asyncio.TimerHandle | None = None
    granted: int = 0

    def _refill(self) -> float:
        now = self.clock()
        if self.tokens < 0:
            self.tokens = float(self.limit.capacity)
        else:
            gained = max(0.0, now - self.updated) * self.limit.refill_per_second
            self.tokens = min(float(self.limit.capacity), self.tokens + gained)
        self.updated = now
        return now

    def _try_take(self) -> bool:
        now = self._refill()
        if now < self.blocked_until or self.tokens < 1.0 + self.floor:
            return False
        self.tokens -= 1.0
        self.granted += 1
        return True

    async def acquire(self) -> None:
        if not self.waiters and self._try_take():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        self._schedule()
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.tokens += 1.0  # granted just as we were cancelled: give it back
                self.granted -= 1
            raise

    def _schedule(self) -> None:
        if self.timer is not None or not self.waiters:
            return
        now = self._refill()
        missing = 1.0 + self.floor - self.tokens
        delay = max(self.blocked_until - now, missing / self.limit.refill_per_second, 0.0)
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(delay, self._grant)

    def _grant(self) -> None:
        self.timer = None
        while self.waiters:
            if self.waiters[0].done():  # cancelled while waiting
                self.waiters.popleft()
                continue
            if not self._try_take():
                break
            self.waiters.popleft().set_result(None)
        self._schedule()

    def observe(self, remaining: int) -> None:
        self._refill()
        self.tokens = min(self.tokens, float(remaining))

    def throttled(self, retry_after: float) -> None:
        self._refill()
        self.tokens = 0.0
        self.blocked_until = max(self.blocked_until, self.clock() + retry_after)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._schedule()


class ArmBudget:
    """Token buckets per subscription and operation kind, shared by every request of a client.

    Args:
        limits: Bucket sizes and refill rates (ARM's defaults unless configured).
        clock: Seconds, monotonic; tests may pass their own.
    """

    def __init__(self, limits: BudgetLimits | None = None, clock: Clock = time.monotonic) -> None:
        self.limits = limits or BudgetLimits()
        self._clock = clock
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self.throttled_count = 0
        """How many 429s the service answered (a well-paced fan-out keeps this at 0)."""

    def _bucket(self, subscription: str, kind: str) -> _Bucket:
        key = (subscription.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self.limits.for_kind(kind)
            # Never reserve the last token: a bucket of one must still let calls through.
            floor = min(limit.capacity * self.limits.reserve, limit.capacity - 1.0)
            bucket = self._buckets[key] = _Bucket(limit, floor, self._clock)
        return bucket

    async def acquire(self, subscription: str, kind: str) -> None:
        """Wait for a token of ``kind`` in ``subscription`` and take it."""
        await self._bucket(subscription, kind).acquire()

    def observe(self, subscription: str, headers: dict[str, str] | object) -> None:
        """Pull the local counts down to what an answer's rate-limit headers report."""
        get = getattr(headers, "get", None)
        if get is None:
            return
        for kind in KINDS:
            value = get(f"x-ms-ratelimit-remaining-subscription-{kind}")
            if value is None:
                continue
            try:
                remaining = int(value)
            except ValueError:
                continue
            self._bucket(subscription, kind).observe(remaining)

    def throttled(self, subscription: str, kind: str, retry_after: float) -> None:
        """A 429 arrived: nothing more of ``kind`` goes out before ``retry_after`` seconds."""
        self.throttled_count += 1
        self._bucket(subscription, kind).throttled(retry_after)

    def waiting(self, subscription: str, kind: str) -> int:
        """Requests queued for a token (how far behind the budget the client is)."""
        return sum(1 for f in self._bucket(subscription, kind).waiters if not f.done())

    def rate(self, kind: str) -> float:
        """The sustained rate of ``kind`` per subscription, in requests per second."""
        return self.limits.for_kind(kind).refill_per_second
