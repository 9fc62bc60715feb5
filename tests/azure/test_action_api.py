"""The action Run Command API path on Azure VMs, against the sandbox over HTTP.

What a user relies on: a script run through the action API ends Succeeded with its output's
last 4 KB and a result that says there is no exit code; under ``--api auto`` a VM whose
managed PUT is refused (403) or whose agent is too old runs through the action API, saying so
on its row; a busy VM (409) waits Queued instead of failing; Arc machines have no action API.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.azure.action_commands import ActionCannotCancel
from core.backends.compute import ComputeBackend
from core.events import Finished, MachineEvent, OutputAppended, StateChanged, WaitChanged
from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    OsType,
    RunApi,
    RunState,
    Stream,
    Waiting,
    new_run_id,
)
from tests.azure.sandboxed import AzureBed, azure_bed, fleet_of, machine_of

LIMIT = 60.0


def vm(name: str, os: str = "linux", **faults: Any) -> dict[str, Any]:
    table: dict[str, Any] = {"name": name, "kind": "vm", "os": os}
    if faults:
        table["faults"] = faults
    return table


@pytest.fixture
async def bed(tmp_path: Path) -> AsyncIterator[AzureBed]:
    fleet = fleet_of(vm("vm-ok"), vm("vm-denied", managed_forbidden=True),
                     vm("vm-win", "windows"), {"name": "arc-1", "kind": "arc", "os": "linux"})
    async with azure_bed(fleet, tmp_path) as ready:
        yield ready


def shell(script: str, api: RunApi = RunApi.AUTO, **fields: Any) -> Command:
    return Command(CommandId.SHELL, script, api=api, **{"timeout": int(LIMIT), **fields})


async def events_of(backend: Any, machine: Machine, command: Command,
                    run_id: str | None = None) -> list[MachineEvent]:
    async def collect() -> list[MachineEvent]:
        return [e async for e in backend.run(machine, command, run_id=run_id or new_run_id())]
    return await asyncio.wait_for(collect(), LIMIT)


def output(events: list[MachineEvent], stream: Stream) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, OutputAppended) and e.stream is stream)


def finished(events: list[MachineEvent]) -> Finished:
    ends = [e for e in events if isinstance(e, Finished)]
    assert len(ends) == 1 and events[-1] is ends[0], events
    return ends[0]


async def test_action_run_succeeds_with_its_output_and_says_there_is_no_exit_code(
        bed: AzureBed) -> None:
    events = await events_of(bed.backend("vm"), machine_of("vm-ok"),
                             shell("echo out $GREETING; echo err >&2; exit 3", RunApi.ACTION,
                                   parameters=()))
    end = finished(events)
    assert end.state is RunState.SUCCEEDED, end
    assert end.exit_code is None
    assert "no exit code" in end.error and "last 4,096 bytes" in end.error
    assert output(events, Stream.STDOUT) == b"out\n"
    assert output(events, Stream.STDERR) == b"err\n"
    assert isinstance(events[0], StateChanged) and events[0].state is RunState.RUNNING


async def test_action_output_is_the_last_4096_bytes(bed: AzureBed) -> None:
    events = await events_of(bed.backend("vm"), machine_of("vm-ok"),
                             shell("seq 1 3000", RunApi.ACTION))
    expected = "".join(f"{i}\n" for i in range(1, 3001)).encode()[-4096:]
    assert output(events, Stream.STDOUT) == expected


async def test_403_on_the_managed_put_falls_back_to_the_action_api(bed: AzureBed) -> None:
    events = await events_of(bed.backend("vm"), machine_of("vm-denied"), shell("echo fine"))
    end = finished(events)
    assert end.state is RunState.SUCCEEDED, end
    assert "managed run commands not permitted (403 AuthorizationFailed)" in end.error
    assert "ran through the action API" in end.error
    assert output(events, Stream.STDOUT) == b"fine\n"


async def test_403_under_api_managed_skips_naming_the_missing_permission(
        bed: AzureBed) -> None:
    events = await events_of(bed.backend("vm"), machine_of("vm-denied"),
                             shell("echo fine", RunApi.MANAGED))
    end = finished(events)
    # Nothing ran: Skipped (no error budget spent), never shown as a script failure.
    assert end.state is RunState.SKIPPED
    assert end.error.startswith(
        "not permitted: needs `Microsoft.Compute/virtualMachines/runCommands/write` "
        "(Virtual Machine Contributor) at /subscriptions/"), end.error


async def test_an_agent_too_old_for_managed_runs_through_the_action_api(bed: AzureBed) -> None:
    old = machine_of("vm-ok").with_health(Health(HealthStatus.READY, "", "2.2.53"))
    end = finished(await events_of(bed.backend("vm"), old, shell("echo fine")))
    assert end.state is RunState.SUCCEEDED
    assert "older than 2.4.0.2" in end.error and "action API" in end.error


async def test_a_busy_vm_waits_queued_then_runs(bed: AzureBed) -> None:
    backend = bed.backend("vm")
    machine = machine_of("vm-ok")
    first = asyncio.create_task(events_of(backend, machine, shell(
        "sleep 1.5; echo first", RunApi.ACTION)))
    # The first run holds the VM once its POST is accepted.
    await _until(lambda: any(r.machine.spec.name == "vm-ok" and r.running
                             for r in bed.service.action_runs._runs.values()))
    second = await events_of(backend, machine, shell("echo second", RunApi.ACTION))
    waits = [e for e in second if isinstance(e, WaitChanged)]
    assert waits and waits[0].waiting is Waiting.QUEUED
    assert finished(second).state is RunState.SUCCEEDED
    assert output(second, Stream.STDOUT) == b"second\n"
    assert finished(await first).state is RunState.SUCCEEDED


async def test_a_busy_vm_past_the_deadline_is_not_started(bed: AzureBed) -> None:
    backend = bed.backend("vm")
    machine = machine_of("vm-ok")
    first = asyncio.create_task(events_of(backend, machine, shell(
        "sleep 4; echo first", RunApi.ACTION)))
    await _until(lambda: any(r.machine.spec.name == "vm-ok" and r.running
                             for r in bed.service.action_runs._runs.values()))
    end = finished(await events_of(backend, machine, shell("echo x", RunApi.ACTION, timeout=1)))
    assert end.state is RunState.NOT_STARTED
    assert "busy with another action run command" in end.error
    assert finished(await first).state is RunState.SUCCEEDED


async def test_arc_machines_have_no_action_api(bed: AzureBed) -> None:
    end = finished(await events_of(bed.backend("arc"), machine_of("arc-1", "arc"),
                                   shell("echo x", RunApi.ACTION)))
    assert end.state is RunState.SKIPPED
    assert "no action Run Command API" in end.error


async def test_a_builtin_runs_through_the_action_api(bed: AzureBed) -> None:
    command = Command(CommandId.SHELL, "", builtin="ifconfig")
    events = await events_of(bed.backend("vm"), machine_of("vm-ok"), command)
    assert finished(events).state is RunState.SUCCEEDED
    assert b"eth0" in output(events, Stream.STDOUT)


async def test_windows_runs_through_the_action_api(
        bed: AzureBed) -> None:
    """Windows answers with two ComponentStatus entries (StdOut, StdErr), not Linux's one
    message with [stdout]/[stderr] markers. (The sandbox plays Windows without pwsh, whose
    stand-in prints no stderr; the StdErr entry's parsing has unit tests.)"""
    windows = dataclasses.replace(machine_of("vm-win"), os=OsType.WINDOWS)
    script = Command(CommandId.POWERSHELL, 'Write-Output "from windows"', api=RunApi.ACTION,
                     timeout=int(LIMIT))
    events = await events_of(bed.backend("vm"), windows, script)
    assert finished(events).state is RunState.SUCCEEDED, finished(events)
    assert b"from windows" in output(events, Stream.STDOUT)
    assert b"from windows" not in output(events, Stream.STDERR)
    builtin = await events_of(bed.backend("vm"), windows,
                              Command(CommandId.POWERSHELL, "", builtin="IPConfig"))
    assert finished(builtin).state is RunState.SUCCEEDED, finished(builtin)
    assert b"IPv4 Address" in output(builtin, Stream.STDOUT)


async def test_a_builtin_of_the_other_os_is_skipped(bed: AzureBed) -> None:
    command = Command(CommandId.POWERSHELL, "", builtin="IPConfig")
    end = finished(await events_of(bed.backend("vm"), machine_of("vm-ok"), command))
    assert end.state is RunState.SKIPPED and "Windows built-in" in end.error


async def test_cancel_says_the_action_api_cannot_stop_the_script(bed: AzureBed) -> None:
    backend = bed.backend("vm")
    assert isinstance(backend, ComputeBackend)
    machine, run_id = machine_of("vm-ok"), new_run_id()
    task = asyncio.create_task(events_of(backend, machine, shell(
        "sleep 2; echo late", RunApi.ACTION), run_id))
    await _until(lambda: bool(backend.action._running))
    with pytest.raises(ActionCannotCancel, match="cannot cancel"):
        await backend.cancel(machine, run_id)
    end = finished(await task)
    assert end.state is RunState.CANCELED and "goes on on the VM" in end.error
    await backend.cancel(machine, run_id)  # over now: harmless


async def test_run_as_is_skipped_on_the_action_api(bed: AzureBed) -> None:
    command = replace(shell("id", RunApi.ACTION), run_as_user="someone")
    end = finished(await events_of(bed.backend("vm"), machine_of("vm-ok"), command))
    assert end.state is RunState.SKIPPED and "--run-as" in end.error


async def _until(condition: Any, within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.02)
