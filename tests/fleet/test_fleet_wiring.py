"""open_fleet joins inventories and backends: one backend per kind, opened by the registry."""

from __future__ import annotations

import threading

import pytest

from core.backends.arc import ArcBackend
from core.backends.compute import ComputeBackend
from core.backends.local import LocalBackend
from core.fleet import FleetError, open_fleet
from core.fleet.registry import BACKEND_OPENERS
from core.model import MachineKind


def test_every_kind_of_machine_has_a_backend_opener() -> None:
    # A new MachineKind without an entry would list machines that nothing can run on.
    assert set(BACKEND_OPENERS) == set(MachineKind)


def _sandbox_threads() -> int:
    return sum(1 for t in threading.enumerate() if "sandbox" in t.name.lower())


async def test_a_fleet_opens_one_backend_per_kind_its_sources_bring() -> None:
    fleet = await open_fleet(["local", "sandbox"])
    try:
        assert sorted(fleet.backends.kinds()) == sorted(
            [MachineKind.LOCAL, MachineKind.VM, MachineKind.ARC])
        by_kind = {m.kind: m for m in fleet.machines}
        assert isinstance(fleet.backends.for_machine(by_kind[MachineKind.LOCAL]), LocalBackend)
        assert isinstance(fleet.backends.for_machine(by_kind[MachineKind.VM]), ComputeBackend)
        assert isinstance(fleet.backends.for_machine(by_kind[MachineKind.ARC]), ArcBackend)
        assert fleet.backends.get(MachineKind.SSH) is None
    finally:
        await fleet.aclose()


async def test_two_azure_sources_clash_and_nothing_is_left_running() -> None:
    before = _sandbox_threads()
    with pytest.raises(FleetError) as caught:
        await open_fleet(["sandbox", "sandbox"])
    assert "'sandbox' and 'sandbox' both bring vm machines" in str(caught.value)
    assert _sandbox_threads() == before
