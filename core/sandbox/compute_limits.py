"""Compute's own (CRP) limits: operation groups counted over a 3- and a 30-minute window.

Reference ``azure-run-command.md`` 7.3: CRP counts some operations per operation group
(HighCostGet: instance-view GETs) over 3-minute and 30-minute windows, reports each
applicable policy in its own ``x-ms-ratelimit-remaining-resource:
Microsoft.Compute/HighCostGet3Min;159`` header, and answers a spent window with 429, an
``OperationNotAllowed`` body whose ``details[].message`` is JSON, and ``Retry-After``.

Counted per (subscription, region of the resource), shared by every principal: CRP sits
behind ARM and sees the subscription, not the caller's bucket; its 429 message says "too
many requests have been received for this subscription", and [doc-crp] (the source of 7.3)
opens with "Compute requests may be throttled at a subscription and on a per-region basis".
So two engineers on one subscription spend one HighCostGet budget per region, whatever
principals they use.

Windows slide: a request counts for the window's length from when it was let through, so
``Retry-After`` is the time until the oldest counted request leaves the window, which is
minutes for a spent 30-minute window. Refused requests are measured (the reference's example
reports ``measuredRequestCount`` 1238 against 300 allowed) but hold no slot.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.sandbox.throttle_settings import WINDOWS, ComputeGroup, ComputeLimits

Clock = Callable[[], float]
WallClock = Callable[[], datetime]
PROVIDER = "Microsoft.Compute"


def compute_operation(route: str, method: str, expand: str | None) -> str | None:
    """The operation name (``throttle_settings.COMPUTE_OPERATIONS``) of a Compute request,
    or None for a request no group can count (writes, deletes, Arc, lists of VMs)."""
    if method != "GET":
        return None
    view = (expand or "").lower() == "instanceview"
    if route in ("vm", "vmss_vm"):
        return "vm_instance_view" if view else "vm_get"
    if route == "vm_instance_view":
        return "vm_instance_view"
    if route == "run_command":
        return "run_command_instance_view" if view else "run_command_get"
    if route == "run_commands":
        return "run_command_list"
    if route == "compute_operation":
        return "operation_status"
    return None


@dataclass(slots=True)
class _Window:
    length: float
    allowed: int
    accepted: deque[float] = field(default_factory=deque)
    refused: deque[float] = field(default_factory=deque)

    def prune(self, now: float) -> None:
        for times in (self.accepted, self.refused):
            while times and times[0] <= now - self.length:
                times.popleft()

    def remaining(self) -> int:
        return max(0, self.allowed - len(self.accepted))

    def frees_in(self, now: float) -> int:
        """Whole seconds until a slot frees (at least 1)."""
        return max(1, math.ceil(self.accepted[0] + self.length - now))


@dataclass(frozen=True, slots=True)
class SpentWindow:
    """A window that refused a request: what the 429 body's ``details[]`` says of it."""

    group: str
    policy: str
    allowed: int
    measured: int
    start: datetime
    end: datetime

    def detail(self) -> dict[str, Any]:
        message = {"operationGroup": self.policy, "startTime": self.start.isoformat(),
                   "endTime": self.end.isoformat(), "allowedRequestCount": self.allowed,
                   "measuredRequestCount": self.measured}
        return {"code": "TooManyRequests", "target": self.group,
                "message": json.dumps(message, separators=(",", ":"))}


@dataclass(frozen=True, slots=True)
class ComputeVerdict:
    allowed: bool
    remaining: tuple[tuple[str, int], ...]
    """(policy, requests left) for every window of every applicable group, in order."""
    spent: tuple[SpentWindow, ...] = ()
    retry_after: int = 0

    def header_values(self) -> list[str]:
        """One ``x-ms-ratelimit-remaining-resource`` value per policy."""
        return [f"{PROVIDER}/{policy};{left}" for policy, left in self.remaining]


@dataclass
class ComputeThrottle:
    """CRP's windows per (subscription, resource region, group)."""

    limits: ComputeLimits
    clock: Clock = time.monotonic
    wall: WallClock = field(default=lambda: datetime.now(UTC))
    _windows: dict[tuple[str, str, str], list[tuple[str, _Window]]] = field(
        default_factory=dict)

    def charge(self, subscription: str, region: str, operation: str) -> ComputeVerdict | None:
        """Count one ``operation`` in every group that holds it; None when none does."""
        groups = self.limits.groups_for(operation)
        if not groups:
            return None
        now = self.clock()
        windows = [(group, policy, window) for group in groups
                   for policy, window in self._of(subscription, region, group)]
        for _, _, window in windows:
            window.prune(now)
        full = [(g, p, w) for g, p, w in windows if w.remaining() == 0]
        if not full:
            for _, _, window in windows:
                window.accepted.append(now)
            return ComputeVerdict(True, tuple((p, w.remaining()) for _, p, w in windows))
        for _, _, window in windows:
            window.refused.append(now)
        end = self.wall()
        spent = tuple(
            SpentWindow(group.name, policy, window.allowed,
                        len(window.accepted) + len(window.refused),
                        end - timedelta(seconds=window.length), end)
            for group, policy, window in full
        )
        return ComputeVerdict(False, tuple((p, w.remaining()) for _, p, w in windows), spent,
                              max(w.frees_in(now) for _, _, w in full))

    def _of(self, subscription: str, region: str, group: ComputeGroup
            ) -> list[tuple[str, _Window]]:
        key = (subscription.lower(), region.lower(), group.name)
        found = self._windows.get(key)
        if found is None:
            found = self._windows[key] = [
                (group.name + suffix, _Window(length, group.allowed(suffix)))
                for suffix, length in WINDOWS
            ]
        return found
