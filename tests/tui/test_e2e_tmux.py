"""The installed ``fleetrun`` driven in tmux, as a person would: a run on the sandbox fleet."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import FLEETRUN, Home


class Terminal:
    """One tmux session on a private socket."""

    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True,
                              capture_output=True, text=True).stdout

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "app", *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def wait_for(self, text: str, within: float = 30.0) -> str:
        deadline = time.monotonic() + within
        while text not in (shown := self.screen()):
            assert time.monotonic() < deadline, f"{text!r} never showed:\n{shown}"
            time.sleep(0.1)
        return shown


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    home = Home(tmp_path / "data", tmp_path / "config")
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; `make test` installs it")
        pytest.skip("tmux is not installed")
    term = Terminal(tmp_path / "tmux.sock")
    env = " ".join(f"{k}={v}" for k, v in (("FLEETRUN_DATA_DIR", home.data),
                                             ("FLEETRUN_CONFIG_DIR", home.config)))
    term.tmux("new-session", "-d", "-s", "app", "-x", "160", "-y", "45",
              f"env {env} {FLEETRUN}; sleep 30")
    term.tmux("resize-window", "-t", "app", "-x", "160", "-y", "45")
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-S", term.socket, "kill-server"], capture_output=True)


def test_a_run_on_the_sandbox_through_the_app(terminal: Terminal) -> None:
    terminal.wait_for("20 machines")
    terminal.keys("/")
    terminal.wait_for("filter: text")  # the filter box has the keyboard now
    terminal.keys("name:web-01,web-02", literal=True)
    terminal.keys("Enter")
    terminal.wait_for("2 shown")
    terminal.keys("a")
    terminal.wait_for("2 marked")
    terminal.keys("c")
    terminal.wait_for("RunShellScript")
    time.sleep(0.3)  # the editor takes focus once the screen is up
    terminal.keys('echo "hello from $HOSTNAME"', literal=True)
    terminal.wait_for("hello from $HOSTNAME")
    terminal.keys("C-r")
    terminal.wait_for("enter runs")
    terminal.keys("Enter")
    shown = terminal.wait_for("Succeeded 2")
    assert "hello from web-01" in shown  # the tail and full panes of the first machine
    terminal.keys("C-q")
