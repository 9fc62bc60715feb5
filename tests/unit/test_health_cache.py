"""The health cache: each machine's last checked health kept between sessions, with its age."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.health_cache import HealthCache, age_text, with_cached_health
from core.model import Health, HealthStatus, Machine, MachineKind, OsType

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def machine(name: str, health: Health | None = None) -> Machine:
    return Machine(f"/m/{name}", name, MachineKind.SSH, OsType.LINUX,
                   health=health or Health())


def test_checked_machines_round_trip_privately_and_merge(tmp_path: Path) -> None:
    cache = HealthCache(tmp_path / "data" / "health.json")
    ready = Health(HealthStatus.READY, "bash 5.2", "5.2", checked_at=NOW)
    cache.save([machine("a", ready), machine("never")])  # never checked: not kept
    assert cache.load() == {"/m/a": ready}
    assert stat.S_IMODE(cache.path.stat().st_mode) == 0o600

    down = Health(HealthStatus.UNREACHABLE, "timed out", checked_at=NOW + timedelta(minutes=1))
    cache.save([machine("b", down)])  # a check of other machines keeps a's entry
    assert cache.load() == {"/m/a": ready, "/m/b": down}


def test_a_missing_or_broken_file_is_an_empty_cache(tmp_path: Path) -> None:
    cache = HealthCache(tmp_path / "health.json")
    assert cache.load() == {}
    for text in ("{not json", '{"version": 99, "machines": {}}', '{"version": 1}', "[]",
                 '{"version": 1, "machines": {"/m/a": {"status": "Ready"}}}'):
        cache.path.write_text(text)
        assert cache.load() == {}, text


def test_the_newer_of_inventory_and_cache_is_shown() -> None:
    old = Health(HealthStatus.READY, checked_at=NOW - timedelta(hours=1))
    new = Health(HealthStatus.NOT_READY, checked_at=NOW)
    cached = {"/m/a": new, "/m/b": old, "/m/c": new}
    shown = with_cached_health(
        [machine("a"), machine("b", new), machine("c", old), machine("d")], cached)
    assert [m.health for m in shown] == [new, new, new, Health()]


def test_age_as_people_say_it() -> None:
    assert age_text(None, NOW) == "unknown"
    assert age_text(NOW - timedelta(seconds=20), NOW) == "just now"
    assert age_text(NOW + timedelta(seconds=5), NOW) == "just now"  # a clock set back
    assert age_text(NOW - timedelta(minutes=2, seconds=50), NOW) == "2 min ago"
    assert age_text(NOW - timedelta(hours=3, minutes=59), NOW) == "3 h ago"
    assert age_text(NOW - timedelta(days=2, hours=1), NOW) == "2 d ago"
