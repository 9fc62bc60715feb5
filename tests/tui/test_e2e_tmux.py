"""The installed ``fleetrun`` driven in tmux, as a person would: a run on the sandbox fleet."""

from __future__ import annotations

import time

from tests.tui.tmux_terminal import Terminal


def test_a_run_on_the_sandbox_through_the_app(terminal: Terminal) -> None:
    terminal.wait_for("22 machines")
    terminal.keys("/")
    terminal.wait_for("filter: text")  # the filter box has the keyboard now
    terminal.keys("name:web-01,web-02", literal=True)
    terminal.keys("Enter")
    terminal.wait_for("· 2 shown")  # not "22 shown": the whole fleet
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
