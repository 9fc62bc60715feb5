"""Files fleetrun replaces whole: the content exactly, private from the start, no debris."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.atomic_files import replace_file


def test_the_new_text_replaces_the_old_and_the_file_is_private_even_with_umask_0(
    tmp_path: Path,
) -> None:
    target = tmp_path / "scan.json"
    target.write_text("old\n")
    target.chmod(0o644)
    previous = os.umask(0)
    try:
        replace_file(target, "new ✓\r\n")
    finally:
        os.umask(previous)
    assert target.read_bytes() == "new ✓\r\n".encode()  # no newline translation
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["scan.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path: Path) -> None:
    target = tmp_path / "a-directory"
    target.mkdir()
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        replace_file(target, "cannot replace a folder")
    assert (target / "inside").read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["a-directory"]


def test_a_symlink_at_the_target_is_replaced_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("not ours to change")
    target = tmp_path / "config.toml"
    target.symlink_to(elsewhere)
    replace_file(target, "ours\n", sync=True)
    assert not target.is_symlink() and target.read_text() == "ours\n"
    assert elsewhere.read_text() == "not ours to change"
