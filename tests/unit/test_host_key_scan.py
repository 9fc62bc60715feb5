"""The recorded host-key scan: private, replaced whole, and a bad file is one clear line."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.host_key_scan import (
    HostScan,
    ScanFileError,
    ScannedKey,
    ScanRecord,
    ScanVerdict,
    load_scan,
    save_scan,
)

KEY = ScannedKey("ssh-ed25519", "SHA256:abc", "[h]:2222 ssh-ed25519 AAAA", ScanVerdict.UNKNOWN)


def test_a_scan_round_trips_privately_and_replaces_the_last(tmp_path: Path) -> None:
    path = tmp_path / "scan.json"
    first = ScanRecord(("hosts.toml",), datetime(2026, 1, 2, tzinfo=UTC),
                       (HostScan("m", "h", 2222, (KEY,)),))
    save_scan(first, path)
    assert load_scan(path) == first
    assert path.stat().st_mode & 0o777 == 0o600
    second = ScanRecord(("other.toml",), datetime(2026, 1, 3, tzinfo=UTC),
                        (HostScan("d", "dead", 22, error="cannot connect"),))
    save_scan(second, path)
    assert load_scan(path) == second
    assert [p.name for p in tmp_path.iterdir()] == ["scan.json"]  # no temporary left


def test_host_verdicts_and_the_problems_trust_hands_over() -> None:
    changed = ScannedKey("ssh-rsa", "SHA256:new", "h ssh-rsa BBBB", ScanVerdict.CHANGED,
                         ("SHA256:old",))
    known = ScannedKey("ecdsa-sha2-nistp256", "SHA256:k", "h ecdsa CCCC", ScanVerdict.KNOWN)
    assert HostScan("m", "h", 22, (KEY, changed)).verdict is ScanVerdict.CHANGED
    assert HostScan("m", "h", 22, (KEY, known)).verdict is ScanVerdict.KNOWN
    assert HostScan("m", "h", 22, (KEY,)).verdict is ScanVerdict.UNKNOWN
    assert HostScan("m", "h", 22, error="down").verdict is ScanVerdict.ERROR
    [problem] = HostScan("m", "h", 2222, (KEY, known, changed)).problems()
    assert (problem.host, problem.port, problem.key_line) == ("h", 2222, KEY.key_line)


@pytest.mark.parametrize("text", ["", "{}", '{"version": 9}', "not json", '{"version": 1}'])
def test_a_bad_record_is_one_line_saying_to_scan_again(tmp_path: Path, text: str) -> None:
    path = tmp_path / "scan.json"
    path.write_text(text)
    with pytest.raises(ScanFileError, match="scan` again"):
        load_scan(path)


def test_no_record_says_to_scan_first(tmp_path: Path) -> None:
    with pytest.raises(ScanFileError, match="hostkeys scan --fleet"):
        load_scan(tmp_path / "missing.json")
