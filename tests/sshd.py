"""The ``sshd`` fixture: a private loopback sshd (:mod:`loopback.sshd`) for the session.

It skips where the server cannot run, or fails on CI, where ``make test`` installs and sets
up what it needs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.loopback_sshd import Sshd, running_sshd, unavailable_reason

__all__ = ["Sshd", "sshd"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; `make test` installs and sets up what the sshd tests need")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sshd() -> Iterator[Sshd]:
    reason = unavailable_reason()
    if reason is not None:
        _unavailable(reason)
    root = Path(tempfile.mkdtemp(prefix="fleetrun-sshd-"))
    try:
        with running_sshd(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
