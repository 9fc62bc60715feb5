"""The snapshot tests' fixture: a frozen clock and a home of their own (apps: harness.py).

Every snapshot must come out the same on every run and every machine, so everything that
depends on when or where it runs is fixed here: the wall clock (time-machine freezes
``datetime.now`` and ``time.time`` everywhere, ``core.model.utc_now`` included; the
monotonic clocks that drive asyncio and Textual's timers keep running), the local time zone
(the history screen shows local times), run ids (given, never drawn), the data and config
directories, NO_COLOR, whether the host has pwsh, the cursor blink and how long toasts stay.

Regenerate the SVGs after a deliberate change to a screen with
``.venv/bin/pytest tests/tui/snapshots --snapshot-update``; look at them before committing
(when a snapshot test fails, ``.cache/snapshot_report.html`` shows each difference).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine

from tests.tui.snapshots.harness import NOW


@pytest.fixture(autouse=True)
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A fixed wall clock in UTC, and a data and config directory of the test's own."""
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.delenv("NO_COLOR", raising=False)
    # The sandbox's Windows machines carry a tag where the host has no pwsh: the snapshots
    # show the newcomer's host, whatever is installed where they are taken.
    monkeypatch.setattr("core.sandbox.stand_in.pwsh_on_host", lambda: False)
    time.tzset()
    try:
        with time_machine.travel(NOW, tick=False):
            yield
    finally:
        monkeypatch.undo()
        time.tzset()
