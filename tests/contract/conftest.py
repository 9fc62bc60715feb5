"""Which backends the contract suite runs against.

To add one, write an async context manager that yields a ready :class:`BackendHarness`
(starting and stopping whatever it needs; it may ask ``request`` for other fixtures) and
append it to ``HARNESSES``. Every contract test then runs against it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from core.backends.local import LocalBackend, local_machine
from tests.contract.harness import BackendHarness

HarnessFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[BackendHarness]]


@contextlib.asynccontextmanager
async def local(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    work_dir = request.getfixturevalue("tmp_path")
    yield BackendHarness("local", LocalBackend(work_dir=work_dir), local_machine())


HARNESSES: list[HarnessFactory] = [local]


@pytest.fixture(params=HARNESSES, ids=lambda factory: factory.__name__)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    async with request.param(request) as ready:
        try:
            yield ready
        finally:
            await ready.stop_leftovers()
