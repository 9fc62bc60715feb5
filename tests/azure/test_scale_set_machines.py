"""VM scale set instances as fleet members, through fleetrun's own Azure client and the
sandbox over HTTP: listed from Resource Graph (Uniform and Flexible) and tagged with their set,
selected by ``scaleset:NAME``, run through the Compute backend at the instance's own path,
their health read from ARM, and their leftover run commands found by ``fleetrun cleanup``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.azure.machine_health import refine_health
from core.backends.base import Backend
from core.cleanup import clean_up
from core.events import Finished, OutputAppended
from core.inventory.azure_graph import query_machines, uniform_instance
from core.model import Command, CommandId, HealthStatus, Machine, MachineKind, RunState, Stream
from core.query import filter_machines
from core.sandbox.fleet import FleetSpec, parse_fleet
from tests.azure.sandboxed import RG, SUB, AzureBed, azure_bed
from tests.azure.test_cleanup import leave_behind
from tests.azure.test_honest_states import leftovers


def scale_set_fleet(**uniform: Any) -> FleetSpec:
    return parse_fleet({
        "sandbox": {"flush_interval": 0.1, "pickup_delay": 0, "agent_timeout": 1},
        "defaults": {"subscription": SUB, "resource_group": RG, "location": "westeurope"},
        "machines": [{"name": "plain", "kind": "vm", "os": "linux"}],
        "scale_sets": [
            {"name": "uni", "orchestration": "Uniform", "count": 2, "os": "linux",
             "tags": {"env": "prod"}, **uniform},
            {"name": "flex", "orchestration": "Flexible", "count": 2, "os": "linux"},
        ],
    })


async def listed(bed: AzureBed) -> dict[str, Machine]:
    return {m.name: m for m in await query_machines(bed.arm, [SUB])}


async def test_both_kinds_are_listed_as_machines_tagged_with_their_set(tmp_path: Path) -> None:
    async with azure_bed(scale_set_fleet(), tmp_path) as bed:
        machines = await listed(bed)
    flexible = sorted(name for name in machines if name.startswith("flex_"))
    assert sorted(machines) == sorted(["plain", "uni/0", "uni/1", *flexible])
    assert len(flexible) == 2
    uni0 = machines["uni/0"]
    assert uni0.kind is MachineKind.VM
    assert uni0.id.endswith("/providers/Microsoft.Compute/virtualMachineScaleSets/uni"
                            "/virtualMachines/0")
    assert uniform_instance(uni0.id) == ("uni", "0")
    assert dict(uni0.tags) == {"env": "prod", "scaleset": "uni", "orchestration": "Uniform"}
    assert dict(machines[flexible[0]].tags) == {"scaleset": "flex", "orchestration": "Flexible"}
    assert dict(machines["plain"].tags) == {}

    everything = list(machines.values())
    assert [m.name for m in filter_machines(everything, "scaleset:uni")] == ["uni/0", "uni/1"]
    assert sorted(m.name for m in filter_machines(everything, "scaleset:*")) == sorted(
        ["uni/0", "uni/1", *flexible])
    assert [m.name for m in filter_machines(everything, "!scaleset:*")] == ["plain"]


async def test_instances_run_through_the_compute_backend(tmp_path: Path) -> None:
    async with azure_bed(scale_set_fleet(), tmp_path) as bed:
        machines = await listed(bed)
        flexible = next(m for name, m in machines.items() if name.startswith("flex_"))
        for machine in (machines["uni/1"], flexible):
            events = [e async for e in bed.backend_for(machine).run(
                machine, Command(CommandId.SHELL, "hostname", timeout=30), run_id="ss000001")]
            end = events[-1]
            assert isinstance(end, Finished) and end.state is RunState.SUCCEEDED, end
            out = b"".join(e.data for e in events
                           if isinstance(e, OutputAppended) and e.stream is Stream.STDOUT)
            # A Uniform instance's host name is its computer name (set + base-36 id).
            assert out.decode().strip() == ("uni000001" if machine.name == "uni/1"
                                            else flexible.name)
        assert leftovers(bed) == {}  # each run command deleted at its own instance's path


async def test_an_instance_health_comes_from_arm(tmp_path: Path) -> None:
    async with azure_bed(scale_set_fleet(agent="not-ready"), tmp_path) as bed:
        machines = await listed(bed)
        health = await refine_health(bed.arm, list(machines.values()))
    assert health[machines["uni/0"].id].status is HealthStatus.NOT_READY
    assert health[machines["plain"].id].status is HealthStatus.READY


async def test_cleanup_finds_leftovers_on_instances(tmp_path: Path) -> None:
    async with azure_bed(scale_set_fleet(), tmp_path, delete_finished=False) as bed:
        machines = await listed(bed)
        uni0 = machines["uni/0"]
        await leave_behind(bed, uni0, "ffff0001")
        assert leftovers(bed) == {"uni_0": ["fleetrun-ffff0001"]}

        def backend_for(machine: Machine) -> Backend:
            return bed.backend_for(machine)

        report = await clean_up(list(machines.values()), backend_for)
        assert not report.unlisted
        assert report.counts()["deleted"] == 1
        assert [(i.machine.name, i.found.name) for i in report.items] == [
            ("uni/0", "fleetrun-ffff0001")]
        assert leftovers(bed) == {}
