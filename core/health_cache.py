"""The last health each machine was checked at, kept between sessions so the fleet screen
shows it at once (with its age) while a fresh check runs in the background.

One small JSON file in the data dir (``health.json``, mode 0600: host names are sensitive),
keyed by machine id, replaced whole on every save. A missing, unreadable or foreign file is
an empty cache, never an error: the next check writes a good one.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from core.atomic_files import replace_file
from core.model import Health, HealthStatus, Machine, MachineId

log = logging.getLogger(__name__)

CACHE_VERSION = 1


class HealthCache:
    """Each machine's last checked health, in one file. Thread-safe (saves run in a thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> dict[MachineId, Health]:
        """Every machine's last checked health; empty when there is no usable file."""
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            if document.get("version") != CACHE_VERSION:
                return {}
            return {MachineId(mid): _health(entry)
                    for mid, entry in document["machines"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring the health cache %s: %s", self.path, exc)
            return {}

    def save(self, checked: Iterable[Machine]) -> None:
        """Keep the health of every machine in ``checked`` that was really checked (has a
        ``checked_at``); others' entries stay. A failed write is logged, not raised: the
        cache only saves waiting."""
        with self._lock:
            kept = self.load()
            kept.update({m.id: m.health for m in checked if m.health.checked_at is not None})
            document = {"version": CACHE_VERSION,
                        "machines": {mid: _entry(h) for mid, h in sorted(kept.items())}}
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                replace_file(self.path, json.dumps(document, ensure_ascii=False, indent=1))
            except OSError as exc:
                log.warning("cannot write the health cache %s: %s", self.path, exc)


def with_cached_health(machines: Sequence[Machine],
                       cached: Mapping[MachineId, Health]) -> list[Machine]:
    """The machines, each with the newer of its inventory's health and its cached one."""
    shown = []
    for machine in machines:
        entry = cached.get(machine.id)
        own = machine.health.checked_at
        if entry is not None and entry.checked_at is not None and (
                own is None or entry.checked_at > own):
            machine = machine.with_health(entry)
        shown.append(machine)
    return shown


def age_text(checked_at: datetime | None, now: datetime) -> str:
    """How long ago a check was, as people say it: ``just now``, ``2 min ago``, ``3 h ago``;
    ``unknown`` for a machine never checked."""
    if checked_at is None:
        return "unknown"
    seconds = max(0, int((now - checked_at).total_seconds()))
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} d ago"


def _entry(health: Health) -> dict[str, Any]:
    assert health.checked_at is not None  # only checked machines are kept
    return {"status": health.status.value, "detail": health.detail,
            "agent_version": health.agent_version,
            "checked_at": health.checked_at.isoformat(), "remedy": list(health.remedy)}


def _health(entry: dict[str, Any]) -> Health:
    try:
        status = HealthStatus(entry["status"])
    except ValueError:  # written by a newer fleetrun
        status = HealthStatus.UNKNOWN
    agent = entry.get("agent_version")
    remedy = entry.get("remedy")
    commands = tuple(str(c) for c in remedy) if isinstance(remedy, list) else ()
    return Health(status, str(entry.get("detail", "")), str(agent) if agent else None,
                  datetime.fromisoformat(entry["checked_at"]), commands)
