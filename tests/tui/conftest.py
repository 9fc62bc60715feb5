"""Fixtures shared by the TUI tests that drive the installed app in tmux."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Home
from tests.tui.tmux_terminal import Terminal

StartApp = Callable[[int, int], Terminal]


@pytest.fixture
def tmux_home(tmp_path: Path) -> Home:
    """The app's private data and config dirs; plant a user's files here before starting."""
    return Home(tmp_path / "data", tmp_path / "config")


@pytest.fixture
def start_app(tmp_path: Path, tmux_home: Home) -> Iterator[StartApp]:
    """Starts fleetrun (no arguments: the sandbox fleet) in tmux at columns x lines."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; `make test` installs it")
        pytest.skip("tmux is not installed")
    started: list[Terminal] = []

    def start(columns: int, lines: int) -> Terminal:
        term = Terminal(tmp_path / f"tmux-{len(started)}.sock", tmux_home)
        started.append(term)
        term.start(columns, lines)
        return term

    try:
        yield start
    finally:
        for term in started:
            term.stop()


@pytest.fixture
def terminal(start_app: StartApp) -> Terminal:
    """fleetrun at 160x45."""
    return start_app(160, 45)
