"""bench/azure's throttle-bound ideal: the best client's reads under fleetrun's poll schedule,
which budget binds, and subscriptions in parallel."""

from __future__ import annotations

import math

from bench.azure_bound import (
    Bucket,
    Window,
    best_cycle_floor,
    durations_of,
    fleet_bound,
    polls_per_machine,
    schedule_floor,
    shared_bound,
)

ARM = {"reads": Bucket(250, 25.0), "writes": Bucket(200, 10.0), "deletes": Bucket(200, 10.0)}
RUNS = (1.0, 3.0)


def test_a_bucket_lets_its_capacity_out_at_once_then_one_request_per_refill() -> None:
    times = Bucket(3, 2.0).send_times([0.0] * 5 + [10.0])
    assert times[:3] == [0.0, 0.0, 0.0]
    assert times[3:5] == [0.5, 1.0]
    assert times[5] == 10.0  # refilled meanwhile: no wait


def test_polls_cover_each_run_until_its_end() -> None:
    assert polls_per_machine(2.0, 2.0, 1.0) == 2
    assert abs(polls_per_machine(1.0, 3.0, 1.0) - 2.5) < 0.01


def test_without_contention_each_machine_is_polled_until_its_end_is_seen() -> None:
    floor = schedule_floor(20, **ARM, durations=RUNS, poll=1.0)

    expected = sum(math.ceil(d) for d in durations_of(20, *RUNS))
    assert floor.reads == expected
    assert floor.last_seen == 3.0  # every PUT at once, the longest run seen at its 3rd poll


def test_polls_held_back_by_the_read_bucket_need_fewer_reads_but_never_outrun_it() -> None:
    floor = schedule_floor(1000, **ARM, durations=RUNS, poll=1.0)

    # Fewer than ceil(d / poll) each: a poll that waits for a token sees more runs ended.
    assert floor.reads < 1000 * polls_per_machine(*RUNS, 1.0)
    assert floor.reads <= 250 + 25 * floor.last_seen


def test_where_reads_bind_a_slower_poll_cycle_is_the_floor() -> None:
    on_time = schedule_floor(200, **ARM, durations=RUNS, poll=1.0)
    best = best_cycle_floor(200, **ARM, durations=RUNS, poll=1.0)

    # A client whose answers come late wastes fewer reads on runs still going: no real
    # client's cycle (an interval plus its round trip) may end sooner than the floor.
    assert best.last_seen < on_time.last_seen and best.reads < on_time.reads
    assert best.last_seen >= 3.0  # never before the longest run's end


def test_reads_bind_at_200_machines_and_writes_at_1000() -> None:
    at_200 = fleet_bound([200], **ARM, durations=RUNS, poll=1.0)
    assert at_200.binding == "reads"
    # Later than the writes' 3 s, sooner than counting every uncontended poll ((500-250)/25).
    assert 3.0 < at_200.seconds < 10.0

    at_1000 = fleet_bound([1000], **ARM, durations=RUNS, poll=1.0)
    assert at_1000.binding == "writes" and at_1000.seconds == (1000 - 200) / 10 + 3.0
    assert at_1000.reads <= at_1000.writes


def test_subscriptions_pace_in_parallel_so_the_slowest_one_decides() -> None:
    one = fleet_bound([1000], **ARM, durations=RUNS, poll=1.0)
    ten = fleet_bound([1000] * 9 + [1001], **ARM, durations=RUNS, poll=1.0)
    assert one.seconds <= ten.seconds < one.seconds + 1


def test_a_second_client_at_half_the_read_rate_slows_only_what_is_past_the_bucket() -> None:
    alone = shared_bound(200, **ARM, durations=RUNS, poll=1.0)
    shared = shared_bound(200, **ARM, durations=RUNS, poll=1.0, others=12.5)
    assert alone.binding == shared.binding == "reads"
    assert alone.seconds < shared.seconds
    # The polls past the first bucket go at 12.5/s instead of 25/s: never faster than that.
    past = shared.reads_needed - ARM["reads"].capacity
    assert shared.reads >= past / 12.5
    # 1,000 machines with half the reads: the writes still bind when polls wait longer.
    thousand = shared_bound(1000, **ARM, durations=RUNS, poll=1.0, others=12.5)
    assert thousand.seconds < fleet_bound([1000], **ARM, durations=RUNS, poll=1.0).seconds + 2


def test_a_compute_window_holds_the_polls_past_it_until_its_oldest_leave() -> None:
    # The polls past the window's allowance wait until the first window's polls leave it,
    # 180 s after they went: one gap when the freed slots cover the rest.
    one_gap = shared_bound(200, **ARM, durations=RUNS, poll=1.0, window=Window(240, 180))
    assert one_gap.binding == "reads" and 180 < one_gap.seconds < 190
    never_full = shared_bound(200, **ARM, durations=RUNS, poll=1.0, window=Window(5000, 180))
    assert never_full.seconds == shared_bound(200, **ARM, durations=RUNS, poll=1.0).seconds
    # A window smaller than one poll per machine needs a gap per window's worth of them.
    two_gaps = shared_bound(200, **ARM, durations=RUNS, poll=1.0, window=Window(90, 180))
    assert 360 < two_gaps.seconds < 370
