"""Where fleetrun keeps things, and the environment overrides for it."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "fleetrun"


def data_dir() -> Path:
    """Journal, run outputs and logs. ``FLEETRUN_DATA_DIR`` overrides the platform default."""
    override = os.environ.get("FLEETRUN_DATA_DIR")
    path = Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def config_dir() -> Path:
    """Settings, saved commands, themes. ``FLEETRUN_CONFIG_DIR`` overrides the default."""
    override = os.environ.get("FLEETRUN_CONFIG_DIR")
    path = Path(override) if override else Path(platformdirs.user_config_dir(APP_NAME))
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def journal_path() -> Path:
    return data_dir() / "journal.sqlite3"


def runs_dir() -> Path:
    """Full outputs, one folder per run."""
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path() -> Path:
    return data_dir() / "fleetrun.log"
