"""ARM's throttling: token buckets per subscription, and Resource Graph's quota window.

ARM refills each bucket continuously (reads 250 at 25/s, writes and deletes 200 at 10/s by
default) and answers 429 with ``Retry-After`` when a bucket is empty; every answer carries
the ``x-ms-ratelimit-remaining-subscription-*`` headers, with the global variant at 15x.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.sandbox.fleet import Bucket, Throttle

GLOBAL_FACTOR = 15
Clock = Callable[[], float]

KIND_FOR_METHOD = {"GET": "reads", "HEAD": "reads", "PUT": "writes", "PATCH": "writes",
                   "POST": "writes", "DELETE": "deletes"}


@dataclass(slots=True)
class TokenBucket:
    capacity: int
    refill_per_second: float
    tokens: float = -1.0
    updated: float = 0.0

    def _refill(self, now: float) -> None:
        if self.tokens < 0:
            self.tokens, self.updated = float(self.capacity), now
            return
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.capacity), self.tokens + elapsed * self.refill_per_second)
        self.updated = now

    def take(self, now: float) -> bool:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def remaining(self, now: float) -> int:
        self._refill(now)
        return int(self.tokens)

    def retry_after(self, now: float) -> int:
        """Whole seconds until one token is back (at least 1, as ARM never says 0)."""
        self._refill(now)
        return max(1, math.ceil((1.0 - self.tokens) / self.refill_per_second))


@dataclass(slots=True)
class Verdict:
    allowed: bool
    kind: str
    remaining: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        if self.kind not in ("reads", "writes", "deletes"):
            return {}
        return {
            f"x-ms-ratelimit-remaining-subscription-{self.kind}": str(self.remaining),
            f"x-ms-ratelimit-remaining-subscription-global-{self.kind}": str(
                self.remaining * GLOBAL_FACTOR + GLOBAL_FACTOR - 1
            ),
        }


@dataclass
class ArmThrottle:
    """Token buckets per (subscription, operation kind)."""

    limits: Throttle
    clock: Clock = time.monotonic
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)

    def _bucket(self, subscription: str, kind: str) -> TokenBucket:
        key = (subscription.lower(), kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            limit: Bucket = getattr(self.limits, kind)
            bucket = self._buckets[key] = TokenBucket(limit.capacity, limit.refill_per_second)
        return bucket

    def charge(self, subscription: str, method: str) -> Verdict:
        kind = KIND_FOR_METHOD.get(method.upper(), "reads")
        bucket = self._bucket(subscription, kind)
        now = self.clock()
        if bucket.take(now):
            return Verdict(True, kind, bucket.remaining(now))
        return Verdict(False, kind, 0, bucket.retry_after(now))


@dataclass
class GraphQuota:
    """Resource Graph's per-user window: N queries per window, then 429 until it resets."""

    limits: Throttle
    clock: Clock = time.monotonic
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def charge(self, user: str) -> tuple[bool, dict[str, str]]:
        now = self.clock()
        start, used = self._windows.get(user, (now, 0))
        if now - start >= self.limits.graph_window:
            start, used = now, 0
        allowed = used < self.limits.graph_queries
        if allowed:
            used += 1
        self._windows[user] = (start, used)
        left = max(0.0, self.limits.graph_window - (now - start))
        whole = int(left)
        headers = {
            "x-ms-user-quota-remaining": str(self.limits.graph_queries - used),
            "x-ms-user-quota-resets-after": f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:"
            f"{whole % 60:02d}",
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, math.ceil(left)))
        return allowed, headers
