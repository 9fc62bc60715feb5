"""What a client knows of one ARM token bucket or Compute operation group, from the headers.

**A bucket** (:class:`TokenCount`) holds the server's last word, refilled at the documented
rate (capped at the bucket's size, as the server caps it), minus every request granted and
not yet answered. The server charges a request when it *arrives*, which can be long after
the client granted it (a starved event loop, a queue for a pooled connection); counting it as
spent until its answer says what the server made of it is what keeps a starved client from
believing in refill the server never banked (its bucket was full) and releasing a burst the
server refuses. Until a bucket's first answer, one request at a time goes out: another client
may already have spent it. Of a banked count only half is spent before fresher answers (a
second client may have read the same count), and drops in the count that our own requests do
not explain are another client's spending, which lowers the refill this client counts on:
two clients on one subscription slow each other down through the headers.

**The reserve for others.** What neither header nor count can show is another client's
request already on its way when an answer reports the count: spend down to the floor and that
request meets an empty bucket. So once another client's spending is seen, the client keeps a
reserve of tokens above the floor and spends only above it: the larger of the other's rate
over one round trip (plus :data:`RESERVE_MARGIN`) and the largest burst it was seen to spend
between two answers (over the last :data:`BURST_MEMORY` seconds), at most a quarter of
the bucket. A client
alone keeps none (a request of its own answered out of order can make a phantom drop of a
token or two; that costs a tenth of a second of refill at most).

**A Compute operation group** (:class:`WindowCount`) counts requests over a 3- or 30-minute
window whose refill is not documented: only what the client can prove frees a slot.
"""

from __future__ import annotations

import collections
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RESOURCE_HEADER = "x-ms-ratelimit-remaining-resource"
FOREIGN_MEMORY = 1.0
"""Seconds over which other clients' spending of a bucket is averaged."""
BURST_MEMORY = 15.0
"""Seconds over which the largest burst another client was seen to spend is remembered."""
RESERVE_MARGIN = 0.25
"""Seconds added to the round trip when sizing the reserve for others' requests in flight
(their answers and ours do not take the same time; a loaded loop reads answers late)."""
LATENCY_WEIGHT = 0.2
"""Weight of the newest round trip in the running average."""
_WINDOW = re.compile(r"(\d+)\s*min$", re.IGNORECASE)


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
    others: Others = field(default_factory=lambda: Others())
    """Other clients' spending as the answers show it, and the reserve it calls for."""

    def _floor(self, now: float | None = None) -> float:
        """The share left for other clients (the configured one, scaled down when the
        server's bucket proves smaller than configured), plus the reserve for the requests
        of clients seen spending (when ``now`` is given)."""
        floor = self.floor
        if self.most_reported >= 0:
            floor *= min(1.0, (self.most_reported + 1.0) / self.capacity)
        if now is None:
            return floor
        # Others' rate as last heard, not faded: after a silence their requests are still
        # on their way when ours go again.
        return floor + min(self.others.reserve(self.reported_at,
                                               self.foreign / FOREIGN_MEMORY),
                           self.capacity / 4)

    def _expected(self, now: float) -> float:
        """The count the server would show now if nobody else spent from it."""
        size = self.capacity if self.most_reported < 0 else min(self.capacity,
                                                                self.most_reported + 1.0)
        return min(size, self.reported + self.refill_per_second * max(0.0, now - self.reported_at))

    def _others_rate(self, now: float) -> float:
        """Others' spending, tokens per second, as the last answers showed it and fading over
        :data:`FOREIGN_MEMORY` since (a client that waits for its share hears no answers;
        holding the last estimate would starve it while the bucket fills)."""
        fading = math.exp(-max(0.0, now - self.reported_at) / FOREIGN_MEMORY)
        return self.foreign * fading / FOREIGN_MEMORY

    def share_rate(self, now: float) -> float:
        """The refill this client may count on: the bucket's, less what others were seen to
        spend (their spending shows as drops in the count that our requests do not explain)."""
        return max(self.refill_per_second * 0.05, self.refill_per_second - self._others_rate(now))

    def _refilled(self, now: float) -> float:
        """Our share of the refill since the last answer: the bucket's rate, less what others
        are expected to spend meanwhile (their fading rate, integrated)."""
        elapsed = max(0.0, now - self.reported_at)
        others = self.foreign * (1.0 - math.exp(-elapsed / FOREIGN_MEMORY))
        return max(self.refill_per_second * 0.05 * elapsed,
                   self.refill_per_second * elapsed - others)

    def server_tokens(self, now: float) -> float:
        return min(self.capacity, self.reported + self.refill_per_second * (now - self.reported_at))

    def remaining(self, now: float) -> float:
        return self.server_tokens(now) - self.in_flight

    def spendable(self, now: float) -> float:
        """Tokens this client may send now: the server's count less the reserve, of which only
        half of what was banked (another client may have read the same count), plus what
        refilled since; less what is in flight."""
        refilled = self._refilled(now)
        floor = self._floor(now)
        banked = self.reported - floor
        share = (banked / 2 if banked >= 2 else banked) + refilled  # a last token is ours
        return min(self.server_tokens(now) - floor, share) - self.in_flight

    def ready_at(self, now: float) -> float | None:
        """When one more request may go (``now`` or later); None: wait for an answer."""
        if not self.answered and self.in_flight:
            return None
        missing = 1.0 - self.spendable(now)
        if missing > 0 and 1.0 + self._floor(now) + self.in_flight > self.capacity:
            return None  # refill cannot free this much; only answers can
        # Others' rate fades while we wait: look again within half its memory.
        wait = (min(missing / self.share_rate(now),
                    max(FOREIGN_MEMORY / 2, missing / self.refill_per_second))
                if missing > 0 else 0.0)
        return max(now + wait, self.blocked_until)

    def answer(self, now: float, seq: int, remaining: int | None, *, charged: bool,
               answered: bool = True, round_trip: float | None = None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.answered = self.answered or answered
        self.charged_since += charged
        if round_trip is not None and answered:
            self.others.timed(round_trip)
        if remaining is not None and seq > self.newest:
            expected = self._expected(now) - self.charged_since
            # After a 429 the count is dated at the block's end; an answer in the meantime (a
            # request already on its way) is no older than it, and must not grow the memory.
            decay = math.exp(-max(0.0, now - self.reported_at) / FOREIGN_MEMORY)
            drop = expected - remaining
            # Answers that overtake each other make single drops noisy; an overestimate of
            # others' spending only slows us, so the sum never goes below zero.
            self.foreign = max(0.0, self.foreign * decay + drop)
            if self.newest < 0:
                # The first word: a bucket found below full was being spent by someone else
                # (at most at the full rate); assume they go on until the counts say otherwise.
                self.foreign = min(self.foreign, self.refill_per_second * FOREIGN_MEMORY)
            else:
                self.others.spent(now, drop)
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
        """A 429: empty until ``Retry-After`` ends, and no refill credit for the wait (the
        clients that were not refused spent it), so one request at a time goes first."""
        self.blocked_until = max(self.blocked_until, now + seconds)
        self.reported, self.reported_at = 0.0, self.blocked_until


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
    answered_since: int = 0
    """Our requests answered since ``reported`` (the group counted each)."""
    foreign: float = 0.0
    """Requests others were seen to count in the group, decaying over FOREIGN_MEMORY s."""
    others: Others = field(default_factory=lambda: Others())

    def _reserve(self, now: float) -> float:
        return math.ceil(self.others.reserve(now, self.foreign / FOREIGN_MEMORY))

    def _aged(self, now: float) -> int:
        """Our requests whose slots freed after the server's last word and by ``now`` (one
        window after their answers, no sooner than the server frees them)."""
        while self.sends and self.sends[0] + self.window <= self.reported_at:
            self.sends.popleft()  # freed before the last word, which counted that
        return sum(1 for t in self.sends if t + self.window <= now)

    def remaining(self, now: float) -> float:
        return self.reported + self._aged(now) - self.in_flight

    def ready_at(self, now: float) -> float | None:
        if self.remaining(now) - self._reserve(now) >= 1.0:
            return max(now, self.blocked_until)
        fresh = self.probe_at or self.reported_at + self.window
        if now >= fresh:
            return None if self.in_flight else max(now, self.blocked_until)
        frees = [t + self.window for t in self.sends if t + self.window > now]
        return max(min([*frees, fresh]), self.blocked_until)

    def answer(self, now: float, seq: int, remaining: int | None,
               round_trip: float | None = None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        self.sends.append(now)
        self.answered_since += 1
        if round_trip is not None:
            self.others.timed(round_trip)
        if remaining is not None and (seq > self.newest or remaining < self.remaining(now)):
            # What the group would show had nobody else counted in it since its last word
            # (slots that freed meanwhile can only hide others' requests, never invent them).
            expected = self.reported + self._aged(now) - self.answered_since
            if seq > self.newest:
                drop = expected - remaining
                decay = math.exp(-(now - self.reported_at) / FOREIGN_MEMORY)
                self.foreign = max(0.0, self.foreign * decay + drop)
                self.others.spent(now, drop)
            # Answers overtake each other: a count above what our own freed slots explain
            # is an older one, unless a whole window passed since the last word.
            fresh = float(remaining) if now >= self.probe_at else min(float(remaining),
                                                                      expected)
            self.reported, self.reported_at, self.newest = fresh, now, max(self.newest, seq)
            self.probe_at = now + self.window
            # Our sends are kept: as they leave the window, their slots are ours again
            # (forgetting them held a group spent to 0 for a whole window after its last
            # word, though the server freed slots from seconds after the first window).
            self.answered_since = 0
        elif remaining is None:
            self.reported -= 1.0

    def block(self, now: float, seconds: float) -> None:
        self.reported, self.reported_at = 0.0, now
        self.sends.clear()
        self.answered_since = 0
        self.blocked_until = max(self.blocked_until, now + seconds)
        self.probe_at = self.blocked_until


@dataclass(slots=True)
class Others:
    """Other clients of one bucket or group: the bursts they were seen to spend, and our
    round trip, which together size the reserve.

    Drops seen within :data:`RESERVE_MARGIN` of a burst's first are that burst (its requests
    can arrive on either side of one of our answers); the largest burst of the last
    :data:`BURST_MEMORY` seconds is kept whole (a burst every few seconds must find the
    reserve it found the last time)."""

    bursts: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    """(when it was first seen, tokens) per burst, oldest first."""
    round_trip: float = 0.0
    """Running average of the seconds from a grant to its answer."""

    def timed(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.round_trip = (seconds if self.round_trip == 0.0 else
                           self.round_trip + LATENCY_WEIGHT * (seconds - self.round_trip))

    def spent(self, now: float, drop: float) -> None:
        """Another client spent ``drop`` since the last answer (rounding below a token is
        noise, unless it adds to a burst under way)."""
        if drop <= 0.0:
            return
        if self.bursts and now - self.bursts[-1][0] <= RESERVE_MARGIN:
            began, tokens = self.bursts.pop()
            self.bursts.append((began, tokens + drop))
        elif drop >= 1.0:
            self.bursts.append((now, drop))
        while self.bursts and self.bursts[0][0] < now - BURST_MEMORY:
            self.bursts.popleft()

    @property
    def seen(self) -> bool:
        return bool(self.bursts)

    def reserve(self, now: float, rate: float) -> float:
        """Tokens to keep for others' requests in flight: their rate over a round trip (plus
        a margin), or their largest recent burst, whichever is more. None until a drop of a
        token or more was seen between two answers (a first count below full may be our own
        earlier run's, and fractions are the refill's rounding)."""
        if not self.bursts:
            return 0.0
        recent = max((tokens for at, tokens in self.bursts if at >= now - BURST_MEMORY),
                     default=0.0)
        return max(recent, rate * (self.round_trip + RESERVE_MARGIN))


def ready(gates: Iterable[TokenCount | WindowCount], now: float) -> float | None:
    """When all ``gates`` let one more request go: ``now``, later, or None (an answer must
    come first)."""
    latest = now
    for gate in gates:
        at = gate.ready_at(now)
        if at is None:
            return None
        latest = max(latest, at)
    return latest


def sooner(wake: float | None, at: float | None) -> float | None:
    if at is None:
        return wake
    return at if wake is None else min(wake, at)


def header_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
