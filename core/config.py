"""Where fleetrun keeps things, and the environment overrides for it."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from core.trusted_files import make_private

APP_NAME = "fleetrun"


def data_dir() -> Path:
    """Journal, run outputs and logs. ``FLEETRUN_DATA_DIR`` overrides the platform default."""
    override = os.environ.get("FLEETRUN_DATA_DIR")
    return _private_dir(Path(override) if override else Path(platformdirs.user_data_dir(APP_NAME)))


def config_dir() -> Path:
    """Settings, saved commands, themes. ``FLEETRUN_CONFIG_DIR`` overrides the default."""
    override = os.environ.get("FLEETRUN_CONFIG_DIR")
    return _private_dir(Path(override) if override else Path(platformdirs.user_config_dir(
        APP_NAME)))


def _private_dir(path: Path) -> Path:
    """``path``, made owner-only: created 0700, or tightened to it if it was there before."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    make_private(path, 0o700)
    return path


def journal_path() -> Path:
    return data_dir() / "journal.sqlite3"


def health_cache_path() -> Path:
    """The machines' last checked health (:mod:`core.health_cache`), beside the journal."""
    return data_dir() / "health.json"


def runs_dir() -> Path:
    """Full outputs, one folder per run."""
    path = data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path() -> Path:
    """fleetrun's log, owner-only (0600) like everything else it keeps: it is created so,
    and tightened if an older fleetrun or another umask left it readable by others."""
    path = data_dir() / "fleetrun.log"
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    make_private(path, 0o600)
    return path
