"""fleetrun's place for temporary folders: private, and cleared of dead processes' folders.

Each test runs a fresh Python with its own TMPDIR, as a new fleetrun would start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIRST_USE = ("import os\nfrom core import scratch\nmade = scratch.folder()\n"
             "print(made, oct(os.stat(made).st_mode & 0o777))")
"""Prints the folder and its mode while this process lives: once it exits, its guardian
removes the folder, maybe before the test looks."""


def first_use(tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(Path.cwd())}
    return subprocess.run([sys.executable, "-c", FIRST_USE], capture_output=True, text=True,
                          env=env, timeout=60)


def start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def test_a_new_start_removes_dead_processes_folders_only(tmp_path: Path) -> None:
    base = tmp_path / f"fleetrun-{os.geteuid()}"
    base.mkdir(mode=0o711)
    live = base / f"{os.getpid()}-{start_time(os.getpid())}"  # this test: alive
    reused = base / f"{os.getpid()}-1"  # a dead process whose PID is now this test's
    gone = base / "999999999-5"
    unknown = base / "notes"
    for folder in (live, reused, gone, unknown):
        (folder / "inside").mkdir(parents=True)
    result = first_use(tmp_path)
    assert result.returncode == 0, result.stderr
    assert live.exists() and unknown.exists()
    assert not reused.exists() and not gone.exists()
    made, mode = result.stdout.split()
    assert Path(made).parent == base
    assert mode == oct(0o711)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_place_someone_else_owns_is_refused_naming_it(tmp_path: Path) -> None:
    base = tmp_path / f"fleetrun-{os.geteuid()}"
    base.mkdir()
    os.chown(base, 65534, 65534)
    result = first_use(tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert str(base) in last and "owned by uid 65534" in last and "TMPDIR" in last
