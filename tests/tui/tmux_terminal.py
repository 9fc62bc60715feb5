"""The installed ``fleetrun`` in a tmux session on a private socket, driven by keys as a
person at a terminal would, and read back from the screen tmux shows."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.cli.conftest import FLEETRUN, Home

DEADLINE = 60.0
"""Seconds a screen condition may take: generous, a loaded 2-core machine runs the suite."""


class Terminal:
    """One tmux session, ``app``, running fleetrun with ``home``'s data and config dirs."""

    def __init__(self, socket: Path, home: Home) -> None:
        self.socket = str(socket)
        self.home = home

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], check=True,
                              capture_output=True, text=True).stdout

    def start(self, columns: int, lines: int) -> None:
        """The first command on the socket starts the server: its environment is the app's.
        Given in full, because the C environment of a test process may hold COLUMNS=80 and
        LINES=24 (set by a library, unseen in os.environ), which the app would take for its
        size whatever the pane's."""
        env = {k: v for k, v in self.home.env().items() if k not in ("COLUMNS", "LINES")}
        size = ("-x", str(columns), "-y", str(lines))
        # `sleep` keeps the pane (and what the app printed last) after the app has quit.
        subprocess.run(["tmux", "-S", self.socket, "new-session", "-d", "-s", "app", *size,
                        f"{shlex.quote(FLEETRUN)}; sleep 30"],
                       check=True, capture_output=True, text=True, env=env)
        self.tmux("resize-window", "-t", "app", *size)

    def stop(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True)

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "app", *(["-l"] if literal else []), *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def wait_until(self, shows: Callable[[str], bool], what: str,
                   within: float = DEADLINE) -> str:
        """The screen once ``shows(screen)``; fails showing the screen after ``within`` s."""
        deadline = time.monotonic() + within
        while not shows(shown := self.screen()):
            assert time.monotonic() < deadline, f"{what} never showed:\n{shown}"
            time.sleep(0.1)
        return shown

    def wait_for(self, *texts: str, within: float = DEADLINE) -> str:
        """The screen once it shows every one of ``texts``."""
        return self.wait_until(lambda shown: all(t in shown for t in texts),
                               " and ".join(map(repr, texts)), within)

    def wait_for_match(self, pattern: str, within: float = DEADLINE) -> re.Match[str]:
        """The first match of ``pattern`` once the screen has one."""
        shown = self.wait_until(lambda s: re.search(pattern, s) is not None,
                                repr(pattern), within)
        match = re.search(pattern, shown)
        assert match is not None
        return match


def line_with(screen: str, text: str) -> str:
    """The screen's first line that holds ``text`` (the whole screen in the failure)."""
    line = next((ln for ln in screen.splitlines() if text in ln), None)
    assert line is not None, f"no line holds {text!r}:\n{screen}"
    return line
