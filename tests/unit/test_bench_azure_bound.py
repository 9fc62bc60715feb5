"""bench/azure's throttle-bound ideal: which budget binds, and subscriptions in parallel."""

from __future__ import annotations

from bench.azure_bound import Bucket, fleet_bound, polls_per_machine

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
