"""Run the installed ``fleetrun`` in a subprocess with private data and config dirs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

FLEETRUN = str(Path(sys.executable).with_name("fleetrun"))


@dataclass
class Home:
    data: Path
    config: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETRUN_")}
        env.update(FLEETRUN_DATA_DIR=str(self.data), FLEETRUN_CONFIG_DIR=str(self.config))
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
