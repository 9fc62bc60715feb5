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
from core.sandbox.embedded import EmbeddedBackend, machines_of
from core.sandbox.fleet import parse_fleet
from core.sandbox.service import SandboxService
from tests.contract.harness import BackendHarness

HarnessFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[BackendHarness]]


@contextlib.asynccontextmanager
async def local(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    work_dir = request.getfixturevalue("tmp_path")
    yield BackendHarness("local", LocalBackend(work_dir=work_dir), local_machine())


def _sandbox(kind: str) -> HarnessFactory:
    @contextlib.asynccontextmanager
    async def factory(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
        fleet = parse_fleet({
            "sandbox": {"flush_interval": 0.1, "pickup_delay": 0},
            "machines": [{"name": f"contract-{kind}", "kind": kind, "os": "linux",
                          "subscription": "sub", "resource_group": "rg",
                          "location": "westeurope"}],
        })
        service = SandboxService(fleet, root=request.getfixturevalue("tmp_path"))
        try:
            [machine] = machines_of(service)
            yield BackendHarness(f"sandbox-{kind}", EmbeddedBackend(service), machine,
                                 unnamed_values_unquoted=True, tails_are_text=True)
        finally:
            await service.aclose()

    factory.__name__ = f"sandbox_{kind}"
    return factory


HARNESSES: list[HarnessFactory] = [local, _sandbox("vm"), _sandbox("arc")]


@pytest.fixture(params=HARNESSES, ids=lambda factory: factory.__name__)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    async with request.param(request) as ready:
        try:
            yield ready
        finally:
            await ready.stop_leftovers()
