"""Run the installed ``fleetrun`` in a subprocess with private data and config dirs."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from core.azure.settings import SANDBOX_TOKEN_ENV

FLEETRUN = str(Path(sys.executable).with_name("fleetrun"))


@dataclass
class Home:
    data: Path
    config: Path
    exported: dict[str, str] = field(default_factory=dict)
    """Variables the user has exported in their shell, e.g. a served sandbox's token."""

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETRUN_")}
        env.update(FLEETRUN_DATA_DIR=str(self.data), FLEETRUN_CONFIG_DIR=str(self.config))
        env.update(self.exported)
        env.update(extra)
        return env


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "data", tmp_path / "config")


CliRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def cli(home: Home) -> CliRunner:
    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FLEETRUN, *args],
            capture_output=True,
            text=True,
            env=home.env(**(env or {})),
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )

    return run


ServedSandbox = Callable[[str], str]


@pytest.fixture
def serve_sandbox(home: Home, tmp_path: Path) -> Iterator[ServedSandbox]:
    """Start ``fleetrun sandbox serve`` on a fleet file's text in its own process.

    Returns the ``[azure]`` table it printed, which points another fleetrun at it, and
    exports the bearer token it printed into ``home`` as its banner says to. Every sandbox
    started is stopped (SIGTERM) at the end of the test.
    """
    started: list[tuple[subprocess.Popen[bytes], IO[str]]] = []

    def serve(fleet_text: str) -> str:
        fleet = tmp_path / f"served-fleet-{len(started)}.toml"
        fleet.write_text(fleet_text)
        log = (tmp_path / f"serve-{len(started)}.log").open("w+")
        # Port 0: test files run in parallel, and two sandboxes on the default port collide.
        proc = subprocess.Popen([FLEETRUN, "sandbox", "serve", "--fleet", str(fleet),
                                 "--port", "0"],
                                stdout=log, stderr=subprocess.STDOUT, env=home.env(),
                                stdin=subprocess.DEVNULL)
        started.append((proc, log))
        deadline = time.monotonic() + 30
        while "Ctrl-C stops" not in (printed := Path(log.name).read_text()):
            assert proc.poll() is None, printed
            assert time.monotonic() < deadline, printed
            time.sleep(0.05)
        found = re.search(r"^  \[azure\]\n((?:  .+\n)+)", printed, re.MULTILINE)
        assert found, printed
        token = re.search(rf"export {SANDBOX_TOKEN_ENV}=(\S+)", printed)
        if token is not None:
            home.exported[SANDBOX_TOKEN_ENV] = token.group(1)
        assert SANDBOX_TOKEN_ENV in home.exported, printed
        return "[azure]\n" + "\n".join(line.strip() for line in found.group(1).splitlines())

    yield serve
    for proc, log in started:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def on_a_terminal(home: Home, *args: str, **env: str) -> bytes:
    """What ``fleetrun ARGS`` writes to a terminal (a pseudo-terminal here, 200 columns
    unless ``COLUMNS`` is given), stdout and stderr together."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([FLEETRUN, *args], stdout=follower, stderr=follower,
                                stdin=subprocess.DEVNULL,
                                env=home.env(**{"COLUMNS": "200", **env}))
        os.close(follower)
        follower = -1
        written = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            written += chunk
        assert proc.wait(timeout=60) == 0, written
        return written
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
