"""asyncssh's log lines are unchanged where a level is enabled, and cost nothing elsewhere."""

from __future__ import annotations

import logging

import pytest
from asyncssh.logging import logger

from core.backends.asyncssh_logging import skip_unheard_logging


def test_an_enabled_level_logs_what_asyncssh_would(caplog: pytest.LogCaptureFixture) -> None:
    skip_unheard_logging()
    skip_unheard_logging()  # twice is once
    with caplog.at_level(logging.INFO, logger="asyncssh"):
        logger.info("Connecting to SSH server %s", ("web-1", 2222))
        logger.debug1("not heard at INFO: %s", [b"abc"])
    assert [r.getMessage() for r in caplog.records] == ["Connecting to SSH server web-1, port 2222"]


def test_a_disabled_level_does_not_format_the_arguments(
        caplog: pytest.LogCaptureFixture) -> None:
    skip_unheard_logging()

    class Loud:
        def __str__(self) -> str:
            raise AssertionError("formatted for a level nobody hears")

    with caplog.at_level(logging.WARNING, logger="asyncssh"):
        logger.info("value %s", [Loud()])  # asyncssh's own log would join str() of the list
    assert not caplog.records
