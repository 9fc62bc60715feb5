"""Full garbage collections between keys, not under them (tui.idle_collector)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tui import idle_collector
from tui.idle_collector import MOST_SECONDS, QUIET_SECONDS, IdleCollector


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collector:
    """Python's collector as the test sets it: its counts, and the full collections asked."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.asked = 0

    def collect(self, *generation: int) -> int:
        self.asked += 1
        self.counts = [0, 0, 0]
        return 0

    def make_due(self) -> None:
        """As many middle-generation collections as Python waits for before a full one."""
        self.counts[2] = gc.get_threshold()[2] if gc.get_threshold()[2] < 1000 else 10


@pytest.fixture
def python_gc(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    fake = Collector()
    monkeypatch.setattr(idle_collector.gc, "get_count", lambda: tuple(fake.counts))
    monkeypatch.setattr(idle_collector.gc, "collect", fake.collect)
    yield fake


def make(clock: Clock) -> IdleCollector:
    collector = IdleCollector(clock)
    collector.start()
    return collector


def test_python_starts_no_full_collection_while_the_app_runs_and_again_after() -> None:
    before = gc.get_threshold()
    collector = IdleCollector()
    collector.start()
    try:
        young, middle, full = gc.get_threshold()
        assert (young, middle) == before[:2] and full > 1_000_000
    finally:
        collector.stop()
    assert gc.get_threshold() == before


def test_a_due_collection_waits_for_a_quiet_moment(python_gc: Collector) -> None:
    clock = Clock()
    python_gc.make_due()
    python_gc.counts[2] -= 1
    collector = make(clock)
    try:
        assert not collector.tick()  # not due: Python would not have collected yet
        python_gc.make_due()
        collector.key_pressed()
        clock.now += QUIET_SECONDS / 2
        assert not collector.tick() and python_gc.asked == 0  # due, but a key just came
        clock.now += QUIET_SECONDS
        assert collector.tick() and python_gc.asked == 1  # quiet: now
        assert not collector.tick()  # and not again until due again
    finally:
        collector.stop()


def test_keys_that_never_stop_delay_a_due_collection_only_so_long(
        python_gc: Collector) -> None:
    clock = Clock()
    collector = make(clock)
    try:
        python_gc.make_due()
        collector.key_pressed()
        waited = 0.0
        while not collector.tick():
            collector.key_pressed()  # a key every 0.1 s, as when one is held down
            clock.now += 0.1
            waited += 0.1
            assert waited <= MOST_SECONDS + 0.2
        assert python_gc.asked == 1 and waited >= MOST_SECONDS - 0.2
    finally:
        collector.stop()
