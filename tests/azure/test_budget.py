"""The throttle budget on its own: its order, its counts after a stall, and its 429s.

A fake clock drives the counts; ``tick()`` stands in for the timers. A small model of ARM's
bucket (charged when a request *arrives*, as the server charges it) answers the requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from core.azure.budget import (
    ArmBudget,
    BucketLimit,
    BudgetLimits,
    Priority,
    ScopeState,
    ThrottleScope,
    Ticket,
    eta_seconds,
    live_budgets,
    resource_limits,
    throttled_group,
)
from core.azure.budget_view import budget_line
from core.azure.throttle_counts import TokenCount

SUB, OTHER = "sub-a", "sub-b"
READS = "x-ms-ratelimit-remaining-subscription-reads"
COMPUTE, ARC = "microsoft.compute GET", "microsoft.hybridcompute GET"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ARM_READS = BucketLimit(250, 25.0)


def budget_of(clock: FakeClock, reads: BucketLimit = ARM_READS,
              reserve: float = 0.0) -> ArmBudget:
    return ArmBudget(BudgetLimits(reads=reads, reserve=reserve), clock=clock)


async def settle_all() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def drained(budget: ArmBudget, scope: str = SUB) -> None:
    """Spend the first answer: the server says the bucket is empty."""
    ticket = await budget.acquire(scope, "reads")
    ticket.answered(200, {READS: "0"})


# ----------------------------------------------------------------------------- the order


async def test_the_most_valuable_request_goes_first() -> None:
    clock = FakeClock()
    budget = budget_of(clock, BucketLimit(1, 1.0))
    await drained(budget)
    order: list[Priority] = []

    async def take(priority: Priority) -> None:
        ticket = await budget.acquire(SUB, "reads", priority)
        order.append(priority)
        ticket.answered(200, {})

    arrivals = [Priority.FIRST_POLL, Priority.POLL, Priority.CHECK, Priority.QUIET_POLL,
                Priority.OPERATION, Priority.POLL]
    tasks = [asyncio.create_task(take(p)) for p in arrivals]
    await settle_all()
    assert order == []  # nothing left in the bucket
    for _ in arrivals:
        clock.now += 1.0
        budget.tick()
        await settle_all()
    await asyncio.gather(*tasks)
    assert order == [Priority.OPERATION, Priority.QUIET_POLL, Priority.CHECK, Priority.POLL,
                     Priority.POLL, Priority.FIRST_POLL]


async def test_a_cancel_delete_passes_the_cleanup_deletes() -> None:
    clock = FakeClock()
    budget = ArmBudget(BudgetLimits(deletes=BucketLimit(1, 1.0), reserve=0.0), clock=clock)
    (await budget.acquire(SUB, "deletes", Priority.CLEANUP)).answered(
        200, {"x-ms-ratelimit-remaining-subscription-deletes": "0"})
    cleanups = [asyncio.create_task(budget.acquire(SUB, "deletes", Priority.CLEANUP))
                for _ in range(3)]
    cancel = asyncio.create_task(budget.acquire(SUB, "deletes", Priority.CANCEL))
    await settle_all()
    clock.now += 1.0
    budget.tick()
    await settle_all()
    assert cancel.done() and not any(t.done() for t in cleanups)
    for task in cleanups:
        task.cancel()


async def test_until_the_first_answer_one_request_at_a_time() -> None:
    """Another client may have spent the bucket already: the first answer says."""
    budget = budget_of(FakeClock())
    first = await budget.acquire(SUB, "reads")
    second = asyncio.create_task(budget.acquire(SUB, "reads"))
    await settle_all()
    assert not second.done()
    first.answered(200, {READS: "100"})
    await settle_all()
    assert second.done()


async def test_a_cancelled_waiter_leaves_its_turn_to_the_next() -> None:
    clock = FakeClock()
    budget = budget_of(clock, BucketLimit(1, 1.0))
    await drained(budget)
    first = asyncio.create_task(budget.acquire(SUB, "reads"))
    second = asyncio.create_task(budget.acquire(SUB, "reads"))
    await settle_all()
    first.cancel()
    await settle_all()
    clock.now += 1.0
    budget.tick()
    await asyncio.wait_for(second, 5)
    assert first.cancelled()


# ----------------------------------------------------------------------------- the counts


@dataclass
class ServerBucket:
    """ARM's token bucket: charged when a request arrives, capped at its size."""

    capacity: float
    rate: float
    tokens: float = -1.0
    updated: float = 0.0
    refused: int = 0

    def charge(self, now: float) -> int | None:
        """Tokens left after this request, or None: 429."""
        if self.tokens < 0:
            self.tokens = self.capacity
        else:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1.0:
            self.refused += 1
            return None
        self.tokens -= 1.0
        return int(self.tokens)


@dataclass
class Wire:
    """Requests granted but not yet at the server (a starved loop has not written them)."""

    clock: FakeClock
    servers: dict[str, ServerBucket]
    latency: float = 0.05
    outbox: list[tuple[float, str, Ticket, asyncio.Future[bool]]] = field(default_factory=list)

    async def send(self, budget: ArmBudget, scope: str, start: float = 0.0) -> None:
        while self.clock.now < start:
            await asyncio.sleep(0)
        while True:
            ticket = await budget.acquire(ThrottleScope.of(scope), "reads")
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self.outbox.append((self.clock.now + self.latency, scope, ticket, done))
            if await done:
                return

    def deliver(self) -> None:
        due = [item for item in self.outbox if item[0] <= self.clock.now]
        self.outbox = [item for item in self.outbox if item[0] > self.clock.now]
        for _, scope, ticket, done in due:
            left = self.servers[scope].charge(self.clock.now)
            if left is None:
                ticket.answered(429, {READS: "0", "retry-after": "1"}, 1.0)
            else:
                ticket.answered(200, {READS: str(left)})
            done.set_result(left is not None)


async def run_wire(wire: Wire, budgets: list[tuple[ArmBudget, str, int]], *,
                   stall: tuple[float, float] | None = None, step: float = 0.05,
                   starts: tuple[float, ...] = ()) -> float:
    """Send every budget's requests through ``wire``; the seconds it took (fake clock).

    ``starts``: seconds after the start when each budget's requests begin (0 by default).

    During ``stall`` (seconds from the start) the client's loop does not run at all: no
    timers, no answers read, nothing written; the server's buckets keep refilling.
    """
    start = wire.clock.now
    begin = [start + after for after in (*starts, *[0.0] * len(budgets))]
    tasks = [asyncio.create_task(wire.send(budget, scope, begin[i]))
             for i, (budget, scope, n) in enumerate(budgets) for _ in range(n)]
    while not all(t.done() for t in tasks):
        wire.clock.now += step
        elapsed = wire.clock.now - start
        assert elapsed < 600, "the requests never all went through"
        if stall is not None and stall[0] <= elapsed < stall[1]:
            continue
        wire.deliver()
        for budget, _, _ in budgets:
            budget.tick()
        await settle_all()
    await asyncio.gather(*tasks)
    return wire.clock.now - start


async def test_a_starved_loop_does_not_release_a_burst_the_server_refuses() -> None:
    """Granted just before the loop starved, 100 requests reach the server only when it
    wakes: the refill the clock shows meanwhile is not the client's to spend again."""
    clock = FakeClock()
    wire = Wire(clock, {SUB: ServerBucket(100, 10.0)})
    budget = budget_of(clock, BucketLimit(100, 10.0))
    took = await run_wire(wire, [(budget, SUB, 400)], stall=(0.5, 8.0))
    assert wire.servers[SUB].refused == 0
    # (400 - 100) / 10 s at the server's rate, plus the stall's lost refill at most.
    assert took < 30 + 8 + 2


async def test_two_clients_on_one_bucket_slow_each_other_through_the_headers() -> None:
    """The second starts while the first is spending the bucket: its first answer shows the
    count, and from then on each sees the other's spending as drops it did not cause.

    (Two clients starting within one round trip both read the same full count; each spends
    only half of it before the next answer, but neither can see the other's requests still
    on their way: without coordination that first burst can overdraw.)
    """
    clock = FakeClock()
    wire = Wire(clock, {SUB: ServerBucket(100, 10.0)})
    one, two = (budget_of(clock, BucketLimit(100, 10.0), reserve=0.05) for _ in range(2))
    took = await run_wire(wire, [(one, SUB, 200), (two, SUB, 200)], starts=(0.0, 1.0))
    assert wire.servers[SUB].refused == 0
    assert one.throttled_count == two.throttled_count == 0
    assert took < (400 - 100) / 10 + 5


async def test_subscriptions_pace_in_parallel() -> None:
    clock = FakeClock()
    subscriptions = [f"sub-{i}" for i in range(10)]
    wire = Wire(clock, {s: ServerBucket(50, 10.0) for s in subscriptions})
    budget = budget_of(clock, BucketLimit(50, 10.0))
    took = await run_wire(wire, [(budget, s, 150) for s in subscriptions])
    assert sum(s.refused for s in wire.servers.values()) == 0
    assert took < (150 - 50) / 10 + 3  # one subscription's bound, not ten of them


# ----------------------------------------------------------------------------- 429s


async def test_a_429_blocks_only_its_scope_and_shows() -> None:
    clock = FakeClock()
    budget = budget_of(clock)
    for scope in (SUB, OTHER):
        (await budget.acquire(scope, "reads")).answered(200, {READS: "100"})
    (await budget.acquire(SUB, "reads")).answered(429, {"retry-after": "30"}, 30.0)
    blocked = asyncio.create_task(budget.acquire(SUB, "reads"))
    clock.now += 10
    budget.tick()
    await settle_all()
    assert not blocked.done()
    await asyncio.wait_for(budget.acquire(OTHER, "reads"), 5)  # another subscription
    await asyncio.wait_for(budget.acquire(SUB, "writes"), 5)  # another bucket
    (state,) = [s for s in budget.states() if s.scope.subscription == SUB and s.kind == "reads"]
    assert (state.queued, state.throttled) == (1, 1)
    assert 19 <= state.throttled_for <= 20
    clock.now += 21
    budget.tick()
    await asyncio.wait_for(blocked, 5)
    assert budget.throttled_count == 1


CRP_429 = {"code": "OperationNotAllowed", "message": "too many requests", "details": [
    {"code": "TooManyRequests", "target": "HighCostGet",
     "message": '{"operationGroup":"HighCostGet30Min","allowedRequestCount":300}'}]}


async def test_a_compute_429_blocks_its_operation_group_not_the_scope() -> None:
    clock = FakeClock()
    budget = budget_of(clock)
    (await budget.acquire(SUB, "reads", lane=COMPUTE)).answered(200, {READS: "100"})
    (await budget.acquire(SUB, "reads", lane=COMPUTE)).answered(
        429, {READS: "99", "retry-after": "120"}, 120.0, CRP_429)
    compute = asyncio.create_task(budget.acquire(SUB, "reads", lane=COMPUTE))
    await asyncio.wait_for(budget.acquire(SUB, "reads", lane=ARC), 5)
    await settle_all()
    assert not compute.done()
    clock.now += 121
    budget.tick()
    await asyncio.wait_for(compute, 5)


async def test_compute_group_counts_come_from_the_resource_header() -> None:
    clock = FakeClock()
    budget = budget_of(clock)
    header = httpx.Headers([
        ("x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet3Min;1"),
        ("x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet30Min;500"),
        (READS, "200")])
    (await budget.acquire(SUB, "reads", lane=COMPUTE)).answered(200, header)
    last = await budget.acquire(SUB, "reads", lane=COMPUTE)  # the one the group had left
    over = asyncio.create_task(budget.acquire(SUB, "reads", lane=COMPUTE))
    await settle_all()
    assert not over.done()
    last.answered(200, httpx.Headers([
        ("x-ms-ratelimit-remaining-resource", "Microsoft.Compute/HighCostGet3Min;0"),
        (READS, "199")]))
    clock.now += 179
    budget.tick()
    await settle_all()
    assert not over.done()  # the 3-minute window has not passed
    clock.now += 2
    budget.tick()
    await asyncio.wait_for(over, 5)


def test_resource_header_and_429_body_parse_as_documented() -> None:
    headers = httpx.Headers([("x-ms-ratelimit-remaining-resource",
                              "Microsoft.Compute/HighCostGet3Min;159, "
                              "Microsoft.Compute/HighCostGet30Min;799"),
                             ("x-ms-ratelimit-remaining-resource", "garbage")])
    assert resource_limits(headers) == {"Microsoft.Compute/HighCostGet3Min": 159,
                                        "Microsoft.Compute/HighCostGet30Min": 799}
    assert throttled_group(CRP_429) == "Microsoft.Compute/HighCostGet30Min"
    assert throttled_group({"error": {"code": "SubscriptionRequestsThrottled"}}) is None


def test_the_eta_is_the_slowest_scopes_backlog_at_its_refill_rate() -> None:
    def state(sub: str, queued: int, remaining: int, rate: float, wait: float) -> ScopeState:
        return ScopeState(ThrottleScope(sub), "writes", queued, queued, 0, remaining, rate,
                          wait, 0)

    assert eta_seconds([]) == 0
    assert eta_seconds([state("a", 300, 100, 10.0, 0.0), state("b", 50, 0, 10.0, 30.0)]) == 35.0


def test_the_budget_line_says_what_waits_what_is_left_and_when_it_ends() -> None:
    scope = ThrottleScope("sub-a")
    line = budget_line([
        ScopeState(scope, "reads", 40, 0, 3, 12, 25.0, 0.0, 0),
        ScopeState(scope, "writes", 120, 120, 0, 0, 10.0, 8.0, 1),
    ])
    assert line == ("Queued 120 for a write token · Throttled writes 8 s · ETA 20 s · "
                    "reads 12 left, writes 0 left")
    assert budget_line([]) == ""


def test_the_budget_line_names_each_of_several_subscriptions_briefly() -> None:
    # At 80 columns a subscription GUID would crowd out the counts it labels.
    a = ThrottleScope("44444444-4444-4444-8444-444444444444")
    b = ThrottleScope("sub-b")
    line = budget_line([
        ScopeState(a, "writes", 5, 5, 0, 0, 10.0, 3.0, 0),
        ScopeState(b, "reads", 0, 0, 0, 200, 25.0, 0.0, 0),
    ])
    assert line.startswith("Queued 5 for a write token · Throttled 44444444… writes 3 s · ETA ")
    assert line.endswith(" · 44444444…: writes 0 left · sub-b: reads 200 left")


def test_a_block_under_a_second_still_shows_as_one() -> None:
    scope = ThrottleScope("sub-a")
    line = budget_line([ScopeState(scope, "reads", 0, 0, 0, 0, 25.0, 0.3, 1)])
    assert "Throttled reads 1 s" in line


async def test_every_budget_reports_its_scopes() -> None:
    budget = budget_of(FakeClock())
    (await budget.acquire(SUB, "reads")).answered(200, {READS: "42"})
    assert budget in live_budgets()
    (state,) = budget.states()
    assert (str(state.scope), state.kind, state.remaining, state.queued) == (SUB, "reads", 42, 0)


def test_an_answer_during_a_429_block_does_not_inflate_others_spending() -> None:
    # A 429 dates the count at the block's end; a request already on its way is answered
    # before then. Its answer once grew the memory of others' spending exponentially, and
    # the client then crawled at a twentieth of the refill long after the storm.
    count = TokenCount(capacity=4, refill_per_second=1.0, floor=0.2, reported=4.0,
                       reported_at=0.0)
    count.answer(1.0, 0, 4, charged=True)
    count.answer(2.0, 1, 2, charged=True)  # one token more gone than ours: someone else
    assert 0 < count.foreign <= 2
    count.block(3.0, 5.0)
    count.answer(3.5, 2, 1, charged=True)
    assert count.foreign <= 2
    assert count.share_rate(9.0) > 0.5
