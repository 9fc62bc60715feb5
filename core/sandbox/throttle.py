"""ARM's throttling: token buckets per (subscription, principal, region), and Resource Graph's
quota window.

ARM's 2024 model (reference ``azure-run-command.md`` 7.2): each scope's bucket refills
continuously (reads 250 at 25/s, writes and deletes 200 at 10/s by default), and a
subscription-global bucket of 15x that, shared by every principal and region of the
subscription, is drawn on as well. A request needs a token from both; when either is empty
it is answered 429 with ``Retry-After`` and spends nothing. Every answer reports both
buckets' real remaining tokens in ``x-ms-ratelimit-remaining-subscription-{kind}`` and
``...-subscription-global-{kind}``. Two clients presenting one principal's token (two
engineers on one service principal) share its buckets; other principals meet them only in
the global bucket.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from core.sandbox.throttle_settings import Bucket, Throttle

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
    """One request's charge: whether it passed, and what its scope and the subscription have
    left. ``by_global`` says the global bucket, not the scope's, was the empty one."""

    allowed: bool
    kind: str
    remaining: int
    global_remaining: int
    retry_after: int = 0
    by_global: bool = False

    def headers(self) -> dict[str, str]:
        if self.kind not in ("reads", "writes", "deletes"):
            return {}
        return {
            f"x-ms-ratelimit-remaining-subscription-{self.kind}": str(self.remaining),
            f"x-ms-ratelimit-remaining-subscription-global-{self.kind}": str(
                self.global_remaining),
        }


@dataclass
class ArmThrottle:
    """Token buckets per (subscription, principal, region, kind), and per (subscription,
    kind) for the global one."""

    limits: Throttle
    clock: Clock = time.monotonic
    _buckets: dict[tuple[str, ...], TokenBucket] = field(default_factory=dict)

    def _bucket(self, key: tuple[str, ...], kind: str, factor: int) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            limit: Bucket = getattr(self.limits, kind)
            bucket = self._buckets[key] = TokenBucket(limit.capacity * factor,
                                                      limit.refill_per_second * factor)
        return bucket

    def charge(self, subscription: str, principal: str, method: str) -> Verdict:
        """Spend one token of ``principal``'s scope and one of the subscription's global
        bucket, or neither."""
        kind = KIND_FOR_METHOD.get(method.upper(), "reads")
        sub = subscription.lower()
        scope = self._bucket((sub, principal, self.limits.region, kind), kind, 1)
        overall = self._bucket((sub, kind), kind, self.limits.global_factor)
        now = self.clock()
        scope_ok, global_ok = scope.remaining(now) >= 1, overall.remaining(now) >= 1
        if scope_ok and global_ok:
            scope.take(now)
            overall.take(now)
            return Verdict(True, kind, scope.remaining(now), overall.remaining(now))
        empty = [b for b, ok in ((scope, scope_ok), (overall, global_ok)) if not ok]
        return Verdict(False, kind, scope.remaining(now), overall.remaining(now),
                       max(b.retry_after(now) for b in empty), by_global=scope_ok)


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
