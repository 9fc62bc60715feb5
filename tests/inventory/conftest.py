"""The inventory tests share the CLI tests' way of running the real ``fleetrun``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import cli, home

__all__ = ["cli", "fixtures", "home"]

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.fixture
def fixtures() -> Path:
    """The folder of realistic inventory files the tests read."""
    return FIXTURES
