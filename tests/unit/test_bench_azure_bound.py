"""bench/azure's throttle-bound ideal: which budget binds, and subscriptions in parallel."""

from __future__ import annotations

from bench.azure_bound import Bucket, Window, fleet_bound, polls_per_machine, shared_bound

ARM = {"reads": Bucket(250, 25.0), "writes": Bucket(200, 10.0), "deletes": Bucket(200, 10.0)}


def test_polls_cover_each_run_until_its_end() -> None:
    assert polls_per_machine(2.0, 2.0, 1.0) == 2
    assert abs(polls_per_machine(1.0, 3.0, 1.0) - 2.5) < 0.01


def test_reads_bind_at_200_machines_and_writes_at_1000_with_fewer_polls() -> None:
    at_200 = fleet_bound([200], **ARM, durations=(1.0, 3.0), poll=1.0)
    assert at_200.binding == "reads" and at_200.seconds == (500 - 250) / 25
    at_1000 = fleet_bound([1000], **ARM, durations=(1.0, 3.0), poll=2.0)
    assert at_1000.binding == "writes" and at_1000.seconds == (1000 - 200) / 10 + 3.0


def test_subscriptions_pace_in_parallel_so_the_slowest_one_decides() -> None:
    one = fleet_bound([1000], **ARM, durations=(1.0, 3.0), poll=1.0)
    ten = fleet_bound([1000] * 9 + [1001], **ARM, durations=(1.0, 3.0), poll=1.0)
    assert one.seconds <= ten.seconds < one.seconds + 1


def test_a_second_client_at_half_the_read_rate_halves_what_is_left_after_the_bucket() -> None:
    alone = shared_bound(200, **ARM, durations=(1.0, 3.0), poll=1.0)
    shared = shared_bound(200, **ARM, durations=(1.0, 3.0), poll=1.0, others=12.5)
    assert alone.binding == shared.binding == "reads"
    # The schedule's reads beyond the bucket go at 12.5/s instead of 25/s.
    assert shared.reads == 2 * alone.reads
    # Polls held back by the budget find their machine ended: fewer than the schedule's 500.
    assert shared.reads_needed == alone.reads_needed == 400


def test_a_compute_window_holds_the_polls_past_it_until_its_oldest_leave() -> None:
    # 240 polls fit the first window; the machines they did not see end are polled once
    # each as the first window's polls leave it, 180 s after they went.
    one_gap = shared_bound(200, **ARM, durations=(1.0, 3.0), poll=1.0, window=Window(240, 180))
    assert one_gap.binding == "reads" and one_gap.seconds == 1.0 + 180
    # With 160 (the sandbox's default), more machines are left than the freed slots.
    two_gaps = shared_bound(200, **ARM, durations=(1.0, 3.0), poll=1.0,
                            window=Window(160, 180))
    assert two_gaps.seconds == 1.0 + 2 * 180
    roomy = shared_bound(200, **ARM, durations=(1.0, 3.0), poll=1.0, window=Window(5000, 180))
    assert roomy.seconds == shared_bound(200, **ARM, durations=(1.0, 3.0), poll=1.0).seconds
