"""``hostkeys scan``'s table on a terminal of any width: every fingerprint whole."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from core.host_key_scan import HostScan, ScannedKey, ScanRecord, ScanVerdict
from tui.cli import hostkeys, render

FINGERPRINTS = ("SHA256:yrrvJzPf0K5uVMcMXHqSiw6nBKyCPHdnUY9jNtIuiE8",
                "SHA256:ATMMA3aVrI9oy6Xst0LvgrlLUUijGw2liXxzHHQ1d+k")
RECORD = ScanRecord(("ssh:web[1-2]",), datetime(2026, 12, 7, tzinfo=UTC), (
    HostScan("web1", "10.0.0.1", 22, (ScannedKey("ssh-ed25519", FINGERPRINTS[0], "l1",
                                                 ScanVerdict.UNKNOWN),)),
    HostScan("webfoo-a-long-name.example.com", "10.0.0.2", 2222, (
        ScannedKey("ecdsa-sha2-nistp256", FINGERPRINTS[1], "l2", ScanVerdict.CHANGED,
                   (FINGERPRINTS[0],)),)),
    HostScan("down", "10.0.0.3", 22, error="cannot connect: Connection refused"),
))


def printed(width: int, monkeypatch: pytest.MonkeyPatch) -> str:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    monkeypatch.setattr(render, "out", console)
    hostkeys._scan_table(RECORD)
    return console.export_text()


def test_every_fingerprint_and_verdict_shows_whole_at_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = printed(80, monkeypatch)
    assert all(len(line) <= 80 for line in text.splitlines())
    for fingerprint in FINGERPRINTS:
        assert fingerprint in text
    assert "webfoo-a-long-name.example.com  [10.0.0.2]:2222  CHANGED" in text
    assert "ECDSA " + FINGERPRINTS[1] in text
    assert "error: cannot connect: Connection refused" in text


def test_a_wide_terminal_gets_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    text = printed(160, monkeypatch)
    header = next(line for line in text.splitlines() if "fingerprint" in line)
    assert header.split() == ["machine", "host", "type", "fingerprint", "verdict"]
    assert FINGERPRINTS[0] in text and "ED25519" in text
