"""The output writer: every byte in order in its file, without reopening files per line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core import output_writer
from core.output_writer import OutputWriter, open_files_kept


def test_a_thousand_streaming_files_are_opened_once_each(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines arrive round-robin over many machines' files, as when a fleet streams; each
    file is opened once (not once per line) and every line is in its file, in order."""
    files = min(1000, open_files_kept())
    assert files > 64  # the test's point: more files streaming than the old fixed 64
    opens: list[str] = []
    real_open = os.open

    def counting_open(path: str, *args: int) -> int:
        opens.append(path)
        return real_open(path, *args)

    monkeypatch.setattr(output_writer.os, "open", counting_open)
    writer = OutputWriter(str(tmp_path / "run"))
    paths = [str(tmp_path / "run" / f"m{i:04d}.stdout") for i in range(files)]
    for line in range(5):
        for path in paths:
            writer.append(path, f"line {line}\n".encode())
    writer.close()
    assert len(opens) == files
    assert all(Path(p).read_text() == "".join(f"line {n}\n" for n in range(5)) for p in paths)


def test_the_files_kept_open_follow_the_process_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    for soft, kept in ((256, 64), (1024, 128), (20_000, 2500), (1 << 20, 4096)):
        monkeypatch.setattr(resource, "getrlimit", lambda _which, soft=soft: (soft, soft))
        assert open_files_kept() == kept
    monkeypatch.setattr(resource, "getrlimit",
                        lambda _which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert open_files_kept() == 4096
