"""A rerun started while its run still goes creates run commands of its own on every machine.

Azure stops a running run command that is PUT again under its name ("Update ... stops the
previous run command"); fleetrun names each run's commands ``fleetrun-<run id>``, and a
rerun has a new id, so the run in progress is left alone and both finish.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from core.azure.run_commands import run_command_name
from core.fanout import FanoutOptions, rerun_assignments
from core.journal_store import Journal
from core.model import Command, CommandId, Run, RunState
from core.runner import RunSession
from core.sandbox.machines import SimMachine
from tests.azure.sandboxed import AzureBed, azure_bed, fleet_of, machine_of

MACHINES = [{"name": "vm-1", "kind": "vm", "os": "linux"},
            {"name": "arc-1", "kind": "arc", "os": "linux", "agent_version": "1.45.02800.0"}]


async def _until(what: str, done: Callable[[], bool], within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not done():
        assert time.monotonic() < deadline, f"{what} did not happen within {within} s"
        await asyncio.sleep(0.05)


def _running_names(bed: AzureBed, machine: SimMachine) -> set[str]:
    """The run commands on ``machine`` whose script has started and not finished."""
    return {name for name, command in bed.service.run_commands(machine).items()
            if command.execution.started and not command.execution.finished}


async def test_a_rerun_of_a_run_in_progress_leaves_it_running(tmp_path: Path) -> None:
    marker = tmp_path / "release"
    script = f"while [ ! -e {marker} ]; do sleep 0.05; done\necho released\n"
    command = Command(CommandId.SHELL, script, timeout=120)
    machines = [machine_of("vm-1"), machine_of("arc-1", "arc")]
    journal = Journal(tmp_path / "journal.sqlite3")
    async with azure_bed(fleet_of(*MACHINES), tmp_path / "sandbox") as bed:
        simulated = list(bed.service.all_machines())
        first = RunSession.plan([(m, command) for m in machines], bed.backend_for,
                                options=FanoutOptions(grace=1.0), journal=journal,
                                runs_root=tmp_path / "runs")
        first_task = asyncio.create_task(first.execute())
        first_name = run_command_name(first.run.run_id).lower()
        await _until("the first run's scripts starting",
                     lambda: all(first_name in _running_names(bed, m) for m in simulated))

        rerun = RunSession.plan(rerun_assignments(first.run, frozenset(RunState)),
                                bed.backend_for, options=FanoutOptions(grace=1.0),
                                parent_run_id=first.run.run_id, journal=journal,
                                runs_root=tmp_path / "runs")
        rerun_task = asyncio.create_task(rerun.execute())
        rerun_name = run_command_name(rerun.run.run_id).lower()
        assert rerun_name != first_name
        await _until("the rerun's scripts starting",
                     lambda: all(rerun_name in _running_names(bed, m) for m in simulated))
        # Both run side by side on every machine; the first was never updated (seq 1).
        for machine in simulated:
            assert _running_names(bed, machine) == {first_name, rerun_name}
            assert bed.service.run_commands(machine)[first_name].seq == 1

        marker.touch()
        runs: list[Run] = await asyncio.wait_for(asyncio.gather(first_task, rerun_task), 90)
        for run in runs:
            outcomes = {mr.machine.name: mr.state for mr in run.machines.values()}
            assert outcomes == {"vm-1": RunState.SUCCEEDED, "arc-1": RunState.SUCCEEDED}
