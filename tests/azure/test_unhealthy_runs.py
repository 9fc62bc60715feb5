"""Machines whose agent cannot run commands, when a run reaches them anyway.

Large selections are not checked one machine at a time before a run (each check is an ARM
read), so a VM agent that is Not Ready is only found out by the run itself: such a machine
ends Skipped, with the service's reason, never Failed.
"""

from __future__ import annotations

from pathlib import Path

from core.events import Finished
from core.model import Command, CommandId, HealthStatus, RunState
from tests.azure.sandboxed import azure_bed, fleet_of, machine_of


async def test_a_not_ready_vm_agent_is_skipped_with_the_services_reason(tmp_path: Path) -> None:
    fleet = fleet_of({"name": "nr-1", "kind": "vm", "os": "linux", "agent": "not-ready"},
                     agent_timeout=0.5)
    async with azure_bed(fleet, tmp_path) as bed:
        machine = machine_of("nr-1")
        events = [e async for e in bed.backend().run(
            machine, Command(CommandId.SHELL, "echo never", timeout=30), run_id="nr1")]
        finished = events[-1]
        assert isinstance(finished, Finished)
        assert finished.state is RunState.SKIPPED
        assert "VMAgentStatusCommunicationError" in finished.error
        assert not bed.service.run_commands(next(bed.service.all_machines()))


async def test_health_checks_before_a_run_find_each_unhealthy_state(tmp_path: Path) -> None:
    fleet = fleet_of(
        {"name": "ok-vm", "kind": "vm", "os": "linux"},
        {"name": "nr-vm", "kind": "vm", "os": "linux", "agent": "not-ready"},
        {"name": "off-vm", "kind": "vm", "os": "linux", "power": "deallocated"},
        {"name": "gone-arc", "kind": "arc", "os": "linux", "status": "disconnected",
         "agent_version": "1.45.02800.0"},
        {"name": "old-arc", "kind": "arc", "os": "linux", "agent_version": "1.29.02286.0"},
    )
    async with azure_bed(fleet, tmp_path) as bed:
        vms = [machine_of(n) for n in ("ok-vm", "nr-vm", "off-vm")]
        arcs = [machine_of(n, "arc") for n in ("gone-arc", "old-arc")]
        health = {**await bed.backend("vm").check_health(vms),
                  **await bed.backend("arc").check_health(arcs)}
        assert [health[m.id].status for m in vms + arcs] == [
            HealthStatus.READY, HealthStatus.NOT_READY, HealthStatus.DEALLOCATED,
            HealthStatus.DISCONNECTED, HealthStatus.AGENT_TOO_OLD]
        assert not any(health[m.id].runnable for m in vms[1:] + arcs)


async def test_a_disconnected_arc_machine_is_skipped_not_left_waiting(tmp_path: Path) -> None:
    # Its agent never hears of the run: the run command stays Creating, and the machine's
    # status (read once the run goes quiet) says why.
    fleet = fleet_of({"name": "off-arc", "kind": "arc", "os": "linux",
                      "status": "disconnected", "agent_version": "1.45.02800.0"})
    async with azure_bed(fleet, tmp_path) as bed:
        machine = machine_of("off-arc", "arc")
        events = [e async for e in bed.backend("arc").run(
            machine, Command(CommandId.SHELL, "echo never", timeout=600), run_id="off1")]
        finished = events[-1]
        assert isinstance(finished, Finished)
        assert finished.state is RunState.SKIPPED, finished
        assert "did not take the command" in finished.error and "Disconnected" in finished.error
        assert not bed.service.run_commands(next(bed.service.all_machines()))
