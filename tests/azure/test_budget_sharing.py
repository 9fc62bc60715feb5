"""A budget shared with another client that fleetrun cannot see (the portal, a script, a second
engineer): its requests already on their way when an answer reports the count must not meet
an empty bucket. A fake clock drives a model of ARM's token bucket (charged when a request
*arrives*) and of a Compute operation group's sliding window.

Before the reserve, fleetrun spent every token its share allowed: the bucket sat at its
floor, and each of the other client's requests in flight met whatever fleetrun had just
taken (0-7 x 429 in 120 requests on the sandbox).
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field

from core.azure.budget import ArmBudget, BucketLimit, BudgetLimits, Ticket

SUB = "sub-a"
READS = "x-ms-ratelimit-remaining-subscription-reads"
RESOURCE = "x-ms-ratelimit-remaining-resource"
GROUP = "Microsoft.Compute/HighCostGet3Min"
LANE = "microsoft.compute/runcommands GET"
CRP_429 = {"code": "OperationNotAllowed", "details": [
    {"code": "TooManyRequests", "target": "HighCostGet",
     "message": '{"operationGroup":"HighCostGet3Min","allowedRequestCount":60}'}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    """ARM's read bucket, and optionally one Compute group's sliding window."""

    capacity: float
    rate: float
    window: tuple[int, float] | None = None
    """(requests allowed, seconds) of the Compute group, or None."""
    tokens: float = -1.0
    updated: float = 0.0
    accepted: collections.deque[float] = field(default_factory=collections.deque)
    refused: collections.Counter[str] = field(default_factory=collections.Counter)

    def charge(self, now: float, who: str, compute: bool) -> tuple[int, dict[str, str]]:
        if self.tokens < 0:
            self.tokens = self.capacity
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            self.refused[who] += 1
            return 429, {READS: "0"}
        headers: dict[str, str] = {}
        if compute and self.window is not None:
            allowed, length = self.window
            while self.accepted and self.accepted[0] <= now - length:
                self.accepted.popleft()
            if len(self.accepted) >= allowed:
                self.refused[who] += 1
                return 429, {READS: str(int(self.tokens)), RESOURCE: f"{GROUP};0"}
            self.accepted.append(now)
            headers[RESOURCE] = f"{GROUP};{allowed - len(self.accepted)}"
        self.tokens -= 1.0
        headers[READS] = str(int(self.tokens))
        return 200, headers


@dataclass
class Model:
    clock: FakeClock
    server: Server
    latency: float = 0.05
    """Seconds each way between a client and the server."""
    arrivals: list[tuple[float, str, Ticket | None, asyncio.Future[int] | None]] = field(
        default_factory=list)
    answers: list[tuple[float, Ticket, int, dict[str, str], asyncio.Future[int]]] = field(
        default_factory=list)

    def other_sends(self, at: float) -> None:
        """The other client sends one request at ``at``: fleetrun never sees its answer."""
        self.arrivals.append((at + self.latency, "other", None, None))

    async def ours(self, budget: ArmBudget, compute: bool) -> None:
        while True:
            ticket = await budget.acquire(SUB, "reads", lane=LANE if compute else "")
            done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self.arrivals.append((self.clock.now + self.latency, "ours", ticket, done))
            if await done != 429:
                return

    def step(self, compute: bool) -> None:
        now = self.clock.now
        due = sorted((a for a in self.arrivals if a[0] <= now), key=lambda a: a[0])
        self.arrivals = [a for a in self.arrivals if a[0] > now]
        for _, who, ticket, done in due:
            status, headers = self.server.charge(now, who, compute and who == "ours")
            if ticket is not None and done is not None:
                self.answers.append((now + self.latency, ticket, status, headers, done))
        back = [a for a in self.answers if a[0] <= now]
        self.answers = [a for a in self.answers if a[0] > now]
        for _, ticket, status, headers, done in back:
            wait = 1.0 if status == 429 else 0.0
            ticket.answered(status, {**headers, "retry-after": "1"} if wait else headers, wait,
                            CRP_429 if status == 429 and RESOURCE in headers else None)
            done.set_result(status)


async def run(model: Model, budget: ArmBudget, ours: int, other: list[float], *,
              compute: bool = False, step: float = 0.01) -> float:
    """Send ``ours`` requests through the budget while the other client sends at the times
    ``other`` (seconds from the start); the seconds fleetrun took (fake clock)."""
    start = model.clock.now
    pending = sorted(other)
    tasks = [asyncio.create_task(model.ours(budget, compute)) for _ in range(ours)]
    while not all(t.done() for t in tasks):
        model.clock.now += step
        elapsed = model.clock.now - start
        assert elapsed < 1200, "fleetrun's requests never all went through"
        while pending and pending[0] <= elapsed:
            model.other_sends(start + pending.pop(0))
        model.step(compute)
        budget.tick()
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return model.clock.now - start


def steady(rate: float, seconds: float) -> list[float]:
    return [i / rate for i in range(int(rate * seconds))]


def bursty(rate: float, burst: int, seconds: float) -> list[float]:
    """``burst`` requests at once, every ``burst / rate`` seconds (``rate`` on average)."""
    every = burst / rate
    return [i * every for i in range(int(seconds / every)) for _ in range(burst)]


def budget_of(clock: FakeClock, capacity: int, rate: float) -> ArmBudget:
    return ArmBudget(BudgetLimits(reads=BucketLimit(capacity, rate)), clock=clock)


async def test_another_client_at_a_steady_half_rate_meets_no_429_and_neither_do_we() -> None:
    clock = FakeClock()
    model = Model(clock, Server(100, 20.0))
    budget = budget_of(clock, 100, 20.0)
    took = await run(model, budget, 600, steady(10.0, 80.0))
    assert model.server.refused == collections.Counter()
    assert budget.throttled_count == 0
    # What is left for fleetrun is about half the refill: (600 - ~90 banked) / ~10 per s.
    assert took < (600 - 50) / 10 * 1.15


async def test_another_client_spending_in_bursts_meets_no_429_and_neither_do_we() -> None:
    clock = FakeClock()
    model = Model(clock, Server(100, 20.0))
    budget = budget_of(clock, 100, 20.0)
    took = await run(model, budget, 600, bursty(10.0, 5, 80.0))
    assert model.server.refused["ours"] == 0
    assert budget.throttled_count == 0
    assert took < (600 - 50) / 10 * 1.25


async def test_another_client_that_starts_late_is_seen_and_left_its_share() -> None:
    clock = FakeClock()
    model = Model(clock, Server(100, 20.0))
    budget = budget_of(clock, 100, 20.0)
    await run(model, budget, 500, [10.0 + t for t in steady(10.0, 60.0)])
    assert model.server.refused["ours"] == 0
    assert budget.throttled_count == 0


async def test_a_slow_server_round_trip_is_covered_by_the_reserve() -> None:
    clock = FakeClock()
    model = Model(clock, Server(60, 20.0), latency=0.25)
    budget = budget_of(clock, 60, 20.0)
    await run(model, budget, 400, steady(10.0, 80.0))
    assert model.server.refused["ours"] == 0
    assert budget.throttled_count == 0


async def test_a_compute_window_another_client_spends_too_is_not_overdrawn() -> None:
    """Compute's group counts the other client's GETs as well (it sees the subscription):
    fleetrun must leave room for those on their way when its count reaches the end."""
    clock = FakeClock()
    model = Model(clock, Server(1000, 100.0, window=(60, 20.0)))
    budget = budget_of(clock, 1000, 100.0)

    # The other client's GETs are Compute GETs of the same group.
    def charge_other(at: float) -> None:
        model.arrivals.append((at + model.latency, "other-compute", None, None))

    original = model.server.charge

    def charge(now: float, who: str, compute: bool) -> tuple[int, dict[str, str]]:
        return original(now, who, compute or who == "other-compute")

    model.server.charge = charge  # type: ignore[method-assign]
    model.other_sends = charge_other  # type: ignore[method-assign]
    await run(model, budget, 150, steady(1.0, 80.0), compute=True)
    assert model.server.refused["ours"] == 0
    assert budget.throttled_count == 0


async def test_a_lane_not_heard_from_goes_one_request_at_a_time() -> None:
    """A VM's instance view may draw on the group the run-command polls are spending: until
    its first answer says, one such request at a time (the bench met 429s from exactly this:
    agent checks spending HighCostGet slots the polls' count did not know of)."""
    clock = FakeClock()
    budget = budget_of(clock, 250, 25.0)
    (await budget.acquire(SUB, "reads", lane=LANE)).answered(
        200, {READS: "200", RESOURCE: f"{GROUP};50"})
    vm_lane = "microsoft.compute/virtualmachines GET"
    first = await budget.acquire(SUB, "reads", lane=vm_lane)
    # Counted in the group it may spend, so the polls do not take the slot it may take.
    assert first.groups == (GROUP,)
    second = asyncio.create_task(budget.acquire(SUB, "reads", lane=vm_lane))
    other_lane = asyncio.create_task(budget.acquire(SUB, "reads", lane=LANE))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not second.done() and other_lane.done()
    first.answered(200, {READS: "198", RESOURCE: f"{GROUP};48"})
    await asyncio.wait_for(second, 5)
