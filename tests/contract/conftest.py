"""Which backends the contract suite runs against.

To add one, write an async context manager that yields a ready :class:`BackendHarness`
(starting and stopping whatever it needs; it may ask ``request`` for other fixtures) and
append it to ``HARNESSES``. Every contract test then runs against it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from core.backends.local import LocalBackend
from core.backends.ssh import SshBackend, SshSettings
from core.inventory.local import local_machine
from core.model import RunApi
from tests.azure.sandboxed import azure_bed, fleet_of, instance_of, machine_of
from tests.contract.harness import BackendHarness
from tests.sshd import Sshd

HarnessFactory = Callable[[pytest.FixtureRequest], AbstractAsyncContextManager[BackendHarness]]


@contextlib.asynccontextmanager
async def local(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    work_dir = request.getfixturevalue("tmp_path")
    yield BackendHarness("local", LocalBackend(work_dir=work_dir), local_machine())


def _azure(kind: str) -> HarnessFactory:
    """A Compute or Arc backend talking to a sandbox served on loopback, over real HTTP."""

    @contextlib.asynccontextmanager
    async def factory(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
        name = f"contract-{kind}"
        fleet = fleet_of({"name": name, "kind": kind, "os": "linux"})
        async with azure_bed(fleet, request.getfixturevalue("tmp_path")) as bed:
            yield BackendHarness(f"azure-{kind}", bed.backend(kind), machine_of(name, kind),
                                 unnamed_values_unquoted=True, tails_are_text=True)

    factory.__name__ = "compute" if kind == "vm" else "arc"
    return factory


UNIFORM_SET = {"name": "contract-ss", "orchestration": "Uniform", "count": 1, "os": "linux"}
"""One Uniform scale set of one Linux instance (``contract-ss/0``)."""
ACTION_API: dict[str, Any] = {
    "tails_are_text": True, "api": RunApi.ACTION, "exit_codes": False, "full_output": False,
    "stops_scripts": False, "parallel_runs": False, "parameters_in_script": True}
"""What the action API can keep of the contract (see :class:`BackendHarness`)."""


@contextlib.asynccontextmanager
async def scaleset_managed(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    """The Compute backend on a Uniform scale set's instance (managed run commands at
    ``.../virtualMachineScaleSets/{set}/virtualMachines/0/runCommands/{name}``), over HTTP."""
    fleet = fleet_of(scale_sets=[UNIFORM_SET])
    async with azure_bed(fleet, request.getfixturevalue("tmp_path")) as bed:
        yield BackendHarness("scaleset-managed", bed.backend("vm"), instance_of("contract-ss", 0),
                             unnamed_values_unquoted=True, tails_are_text=True)


@contextlib.asynccontextmanager
async def scaleset_action(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    """The Compute backend asked for the action API on a Uniform scale set's instance
    (``POST .../virtualMachineScaleSets/{set}/virtualMachines/0/runCommand``), over HTTP."""
    fleet = fleet_of(scale_sets=[UNIFORM_SET])
    async with azure_bed(fleet, request.getfixturevalue("tmp_path")) as bed:
        yield BackendHarness("scaleset-action", bed.backend("vm"), instance_of("contract-ss", 0),
                             **ACTION_API)


scaleset_action.__name__ = "scaleset-action"


@contextlib.asynccontextmanager
async def compute_action(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    """The Compute backend asked for the action Run Command API (``--api action``), against
    the sandbox over real HTTP: no exit code, the last 4 KB at the end, one run at a time,
    no cancel (see the capability flags of :class:`BackendHarness`)."""
    name = "contract-action"
    fleet = fleet_of({"name": name, "kind": "vm", "os": "linux"})
    async with azure_bed(fleet, request.getfixturevalue("tmp_path")) as bed:
        yield BackendHarness("azure-vm-action", bed.backend("vm"), machine_of(name, "vm"),
                             **ACTION_API)


compute_action.__name__ = "compute-action"


@contextlib.asynccontextmanager
async def ssh(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    """The SSH backend against a real OpenSSH sshd on loopback."""
    server: Sshd = request.getfixturevalue("sshd")
    backend = SshBackend(SshSettings(known_hosts=server.known_hosts))
    try:
        yield BackendHarness("ssh", backend, server.machine())
    finally:
        await backend.aclose()


HARNESSES: list[HarnessFactory] = [local, _azure("vm"), _azure("arc"), compute_action,
                                   scaleset_managed, scaleset_action, ssh]


@pytest.fixture(params=HARNESSES, ids=lambda factory: factory.__name__)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[BackendHarness]:
    async with request.param(request) as ready:
        try:
            yield ready
        finally:
            await ready.stop_leftovers()
