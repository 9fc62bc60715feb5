"""The sandbox fleet inside fleetrun's own process, until the Azure backends arrive.

``fleetrun --fleet sandbox`` needs machines and a way to run commands on them. The Azure
backends (issue 4) will reach the sandbox over HTTP like any ARM client; until then this
module drives the same service directly: it creates the run command through the service's
PUT logic, watches the agent's reports, reads the output from the sandbox's own append
blobs, and deletes the run command when done or cancelled (which kills the script). It
satisfies ``core.backends.base.Backend`` structurally and imports nothing from there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.model import (
    Command,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    MachineKind,
    OsType,
    RunState,
    Stream,
)
from core.sandbox.blob_sink import internal_blob_url
from core.sandbox.errors import ArmError
from core.sandbox.machines import SimMachine
from core.sandbox.runcommands import RunCommand
from core.sandbox.sas import sign_blob_sas
from core.sandbox.service import SandboxService

POLL_SECONDS = 0.2
RUNNING_MESSAGE = "Execution in progress"
_STATES = {
    "Succeeded": RunState.SUCCEEDED,
    "Failed": RunState.FAILED,
    "TimedOut": RunState.TIMED_OUT,
    "Canceled": RunState.CANCELED,
}


def health_of(machine: SimMachine) -> Health:
    """A simulated machine's agent health in fleetrun's vocabulary."""
    now = datetime.now(UTC)
    spec = machine.spec
    if machine.is_vm:
        if machine.power != "running":
            return Health(HealthStatus.DEALLOCATED, f"VM {machine.power}", checked_at=now)
        if not machine.agent_ready:
            return Health(HealthStatus.NOT_READY, "VM Agent is unresponsive.", "Unknown", now)
        return Health(HealthStatus.READY, "", "2.7.41491.1102", now)
    version = spec.agent_version or None
    if not machine.agent_supports_run_commands:
        return Health(HealthStatus.AGENT_TOO_OLD,
                      f"agent {spec.agent_version} is older than 1.33", version, now)
    if machine.arc_status != "connected":
        return Health(HealthStatus.DISCONNECTED, f"Arc status {machine.arc_status}", version,
                      now)
    return Health(HealthStatus.READY, "", version, now)


def machines_of(service: SandboxService) -> list[Machine]:
    """The sandbox fleet as fleetrun machines, with health as the sandbox reports it."""
    return [
        Machine(
            id=sim.resource_id,
            name=sim.name,
            kind=MachineKind.VM if sim.is_vm else MachineKind.ARC,
            os=OsType.WINDOWS if sim.windows else OsType.LINUX,
            location=sim.spec.location,
            subscription=sim.spec.subscription,
            tags=dict(sim.spec.tags),
            health=health_of(sim),
        )
        for sim in service.all_machines()
    ]


class EmbeddedBackend:
    """Runs commands on the in-process sandbox fleet (VMs and Arc servers alike)."""

    def __init__(self, service: SandboxService) -> None:
        self._service = service
        self._by_id = {sim.resource_id.lower(): sim for sim in service.all_machines()}

    def _sim(self, machine: Machine) -> SimMachine:
        sim = self._by_id.get(machine.id.lower())
        if sim is None:
            raise LookupError(f"{machine.id} is not a sandbox machine")
        return sim

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: health_of(self._sim(m)) for m in machines}

    async def cancel(self, machine: Machine, run_id: str) -> None:
        with contextlib.suppress(ArmError):
            await self._service.delete_run_command(self._sim(machine), _name(run_id))

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        sim = self._sim(machine)
        name = _name(run_id)
        uris = _blob_uris(self._service, sim, name)
        try:
            _, resource, _ = await self._service.put_run_command(
                sim, name, _put_body(sim, command, uris)
            )
        except ArmError as error:
            yield Finished(machine.id, RunState.FAILED, error=f"{error.code}: {error.message}")
            return
        try:
            async for event in self._watch(machine.id, sim, resource, uris, command.timeout):
                yield event
        finally:
            # Done or cancelled, the resource goes: a VM holds at most 25 run commands, and
            # deleting one that still runs kills its script.
            await self.cancel(machine, run_id)

    async def _watch(
        self,
        machine_id: MachineId,
        sim: SimMachine,
        resource: RunCommand,
        uris: dict[Stream, str],
        script_timeout: int,
    ) -> AsyncIterator[MachineEvent]:
        execution = resource.execution
        loop = asyncio.get_running_loop()
        sent = loop.time()
        offsets = dict.fromkeys(uris, 0)
        tails: dict[Stream, str] = {}
        announced = False
        while True:
            view = execution.view
            if not announced and execution.started:
                announced = True
                yield StateChanged(machine_id, RunState.RUNNING, RUNNING_MESSAGE)
            for stream, uri in uris.items():
                data = self._service.sinks.read_own(uri, offsets[stream])
                if data:
                    yield OutputAppended(machine_id, stream, offsets[stream], data)
                    offsets[stream] += len(data)
            for stream, text in ((Stream.STDOUT, view.output), (Stream.STDERR, view.error)):
                if announced and tails.get(stream) != text:
                    tails[stream] = text
                    yield TailUpdated(machine_id, stream, text.encode("utf-8"))
            if execution.agent_error is not None:
                code, message = execution.agent_error
                yield Finished(machine_id, RunState.FAILED, error=f"{code}: {message}")
                return
            if self._service.run_commands(sim).get(resource.name.lower()) is not resource:
                yield Finished(machine_id, RunState.CANCELED, error="canceled: the run "
                               "command was deleted, which stopped the script")
                return
            if execution.finished:
                state = _STATES.get(view.execution_state, RunState.FAILED)
                error = "" if state is RunState.SUCCEEDED else view.execution_message
                # The Linux handler reports a timeout as Failed with exit -1; a client can
                # tell it apart from a signal only by the clock.
                if (state is RunState.FAILED and view.exit_code == -1 and script_timeout > 0
                        and loop.time() - sent >= script_timeout):
                    state = RunState.TIMED_OUT
                    error = f"timed out after {script_timeout} s: {view.execution_message}"
                yield Finished(machine_id, state, view.exit_code, view.start_time,
                               view.end_time, error)
                return
            await asyncio.sleep(POLL_SECONDS)


def _blob_uris(service: SandboxService, sim: SimMachine, name: str) -> dict[Stream, str]:
    """Output and error blob SAS URLs in the sandbox's own storage, as a client would make."""
    fleet = service.fleet
    container = fleet.containers[0]
    expiry = datetime.now(UTC) + timedelta(hours=24)
    uris = {}
    for stream in (Stream.STDOUT, Stream.STDERR):
        blob = f"{name}/{sim.name}/{stream.value}.txt"
        sas = sign_blob_sas(fleet.account, fleet.account_key, container, blob, "racw", expiry)
        uris[stream] = internal_blob_url(fleet.account, container, blob, sas)
    return uris


def _name(run_id: str) -> str:
    return f"fleetrun-{run_id}"


def _put_body(sim: SimMachine, command: Command, uris: dict[Stream, str]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "source": {"script": command.script},
        "parameters": [{"name": p.name, "value": p.value} for p in command.public_parameters],
        "protectedParameters": [
            {"name": p.name, "value": p.value} for p in command.protected_parameters
        ],
        "asyncExecution": command.async_execution,
        "timeoutInSeconds": command.timeout,
        "outputBlobUri": uris[Stream.STDOUT],
        "errorBlobUri": uris[Stream.STDERR],
    }
    if command.run_as_user:
        properties["runAsUser"] = command.run_as_user
    if command.run_as_password:
        properties["runAsPassword"] = command.run_as_password
    return {"location": sim.spec.location, "properties": properties}

