"""Managed run commands on Azure VMs and Arc servers: the part both backends share.

Per machine: ``PUT .../runCommands/fleetrun-<run id>`` (asyncExecution, timeout, parameters,
output blobs) → poll the run command's instance view for state, exit code and the 4 KB
tails, as often as the ARM read budget allows → tail the output blobs for the full output
(Storage, outside the ARM budget) → on the end, read the blobs until they hold everything
the tail shows (a blob that never does is named in the machine's result: its state stays
the instance view's, but it is not passed off as the whole output) → delete the run command
(a VM holds at most 25; deleting one that still runs kills its script).

The PUT's long-running operation is not followed: the instance view says everything it
would, and following it would spend a read per machine per poll. Only when provisioning
fails without an execution result is the operation read once, for its error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.azure.arm import ArmError
from core.azure.blob_tail import BlobTailer
from core.azure.budget import Priority
from core.azure.machine_health import refine_health
from core.azure.run_commands import InstanceView, InvalidView, put_body, run_command_path
from core.azure.session import AzureSession
from core.backends.blob_output import BlobOutput
from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.model import (
    Command,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    RunState,
    Stream,
)

log = logging.getLogger(__name__)

AGENT_UNAVAILABLE_CODES = frozenset({"vmagentstatuscommunicationerror"})
"""Provisioning errors that mean the agent cannot take commands: skipped, not failed."""
GONE = 404


@dataclass(slots=True)
class _Watch:
    """One machine's run as the client sees it."""

    machine: Machine
    run_id: str
    path: str
    operation_url: str = ""
    output: BlobOutput | None = None
    tails: dict[Stream, str] = field(default_factory=dict)
    running: bool = False
    view: InstanceView | None = None
    away: str = ""
    """Why the machine's agent is not there, while it is not (empty otherwise)."""


class ManagedRunCommands:
    """The Backend protocol over a provider's managed run commands.

    Subclasses name the provider and how its machines' health is read.

    Args:
        session: The ARM client, blob access and settings of the fleet.
    """

    expand_instance_view: bool = True
    """Whether GET needs ``$expand=instanceView`` (Compute does; Arc answers with it anyway)."""

    def __init__(self, session: AzureSession) -> None:
        self.session = session
        self._canceled: set[tuple[MachineId, str]] = set()

    # -- health ---------------------------------------------------------------------------

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        """Per-machine agent checks for small selections; the inventory's word for large ones
        (each check is an ARM read, and a large fan-out needs its reads for polling)."""
        if len(machines) > self.session.pacing.health_check_limit:
            return {m.id: m.health for m in machines}
        return await refine_health(self.session.arm, machines)

    # -- run ------------------------------------------------------------------------------

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        watch = _Watch(machine, run_id, run_command_path(machine.id, run_id))
        output = self.session.output
        targets = output.targets(run_id, machine) if output is not None else None
        body = put_body(command, machine.location, targets)
        try:
            answer = await self.session.arm.request("PUT", watch.path, json_body=body,
                                                    priority=Priority.START)
        except ArmError as error:
            yield Finished(machine.id, RunState.FAILED, error=f"run command not created: {error}")
            return
        watch.operation_url = answer.headers.get("azure-asyncoperation", "")
        yield StateChanged(machine.id, RunState.PENDING, "submitted; waiting for the agent")
        # aclosing: when our consumer stops early, the inner generator's clean-up (delete the
        # run command, stop the poller) must run now, not whenever it is garbage-collected.
        async with contextlib.aclosing(self._watch(watch, command)) as events:
            async for event in events:
                yield event

    async def attach(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        """Follow a run command created earlier (``fleetrun attach`` after a crash)."""
        watch = _Watch(machine, run_id, run_command_path(machine.id, run_id))
        params = {"$expand": "instanceView"} if self.expand_instance_view else None
        try:
            InstanceView.parse(await self.session.arm.get(watch.path, params, Priority.CHECK))
        except ArmError as error:
            if error.status == GONE:
                yield Finished(machine.id, RunState.NOT_STARTED, error="not started: its run "
                               "command does not exist (fleetrun stopped before creating it, "
                               "or it was deleted)")
            else:
                yield Finished(machine.id, RunState.FAILED, error=f"cannot attach: {error}")
            return
        except InvalidView as error:
            yield Finished(machine.id, RunState.FAILED, error=f"cannot attach: {error}")
            return
        yield StateChanged(machine.id, RunState.PENDING, "attached; reading its state")
        async with contextlib.aclosing(self._watch(watch, command)) as events:
            async for event in events:
                yield event

    async def _watch(
        self, watch: _Watch, command: Command
    ) -> AsyncGenerator[MachineEvent, None]:
        output, blobs = self.session.output, self.session.blobs
        if output is not None and blobs is not None:
            targets = output.targets(watch.run_id, watch.machine)
            watch.output = BlobOutput(watch.machine.id, watch.machine.name, {
                Stream.STDOUT: BlobTailer(blobs, targets.output_uri),
                Stream.STDERR: BlobTailer(blobs, targets.error_uri),
            }, self.session.pacing.blob_interval)
        finished = False
        try:
            async with contextlib.aclosing(self._follow(watch, command)) as events:
                async for event in events:
                    finished = finished or isinstance(event, Finished)
                    yield event
        finally:
            # Cancelled or failed half-way, deleting the run command stops the script; once
            # finished, it frees one of the VM's 25 run command slots.
            if not finished or self.session.delete_finished:
                await self._delete(watch.machine, watch.run_id, wait=False)

    async def _follow(
        self, watch: _Watch, command: Command
    ) -> AsyncGenerator[MachineEvent, None]:
        views: asyncio.Queue[InstanceView | ArmError | InvalidView] = asyncio.Queue()
        poller = asyncio.create_task(self._poll(watch, views), name=f"poll:{watch.machine.name}")
        pacing = self.session.pacing
        loop = asyncio.get_running_loop()
        quiet_since = checked_at = loop.time()
        try:
            while True:
                blobs = watch.output
                try:
                    async with asyncio.timeout(blobs.next_read_in() if blobs else None):
                        item = await views.get()
                except TimeoutError:
                    item = None
                if blobs is not None:
                    if isinstance(item, InstanceView):
                        for stream, text in _tails(item).items():
                            if watch.tails.get(stream, "") != text:
                                blobs.news(stream)
                    async for appended in blobs.read():
                        yield appended
                now = loop.time()
                if item is None or item == watch.view:
                    if min(now - quiet_since, now - checked_at) >= pacing.stall_after:
                        checked_at = now
                        async for change in self._check_agent(watch):
                            yield change
                    if item is None:
                        continue
                else:
                    quiet_since = now
                if isinstance(item, ArmError | InvalidView):
                    async for event in self._ended_without_view(watch, item):
                        yield event
                    return
                watch.view = item
                if (item.running or item.terminal) and not watch.running:
                    watch.running = True
                    yield StateChanged(watch.machine.id, RunState.RUNNING,
                                       item.message or "running",
                                       **({"at": item.started} if item.started else {}))
                for tail in self._tail_events(watch, item):
                    yield tail
                if item.terminal:
                    async for event in self._finish(watch, item, command):
                        yield event
                    return
        finally:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller

    async def _check_agent(self, watch: _Watch) -> AsyncIterator[StateChanged]:
        """The run went quiet: is the machine's agent still there? (one ARM read)

        A machine that drops off mid-run (VM agent Not Ready, Arc Disconnected) leaves its
        run command frozen, with no error. Its state becomes Unknown with the reason, and
        the run waits for the agent to come back (or for the engine's deadline).
        """
        health = (await refine_health(self.session.arm, [watch.machine]))[watch.machine.id]
        if health.status in (HealthStatus.READY, HealthStatus.UNKNOWN):
            if watch.away:
                watch.away = ""
                state = RunState.RUNNING if watch.running else RunState.PENDING
                yield StateChanged(watch.machine.id, state, "the agent is back")
            return
        detail = f" ({health.detail})" if health.detail else ""
        message = (f"agent {health.status.value}{detail} while the run was going; waiting "
                   "for it to come back")
        if message != watch.away:
            watch.away = message
            yield StateChanged(watch.machine.id, RunState.UNKNOWN, message)

    async def _poll(self, watch: _Watch, views: asyncio.Queue[Any]) -> None:
        """GET the run command until it is over; each answer (or the error) goes to ``views``."""
        params = {"$expand": "instanceView"} if self.expand_instance_view else None
        interval = self.session.pacing.poll_interval
        priority, last = Priority.FIRST_POLL, None
        while True:
            # A GET right after the PUT (or the attach's own GET) would find nothing new:
            # the budget's reads are worth more one interval later.
            await asyncio.sleep(interval)
            try:
                view = InstanceView.parse(await self.session.arm.get(watch.path, params,
                                                                     priority))
            except (ArmError, InvalidView) as error:
                await views.put(error)
                return
            await views.put(view)
            # A run whose view stopped changing (its output stopped growing) has most likely
            # ended: its next poll delivers a result, so it goes before those still streaming.
            priority = Priority.QUIET_POLL if view == last else Priority.POLL
            last = view
            if view.terminal:
                return

    def _tail_events(self, watch: _Watch, view: InstanceView) -> list[TailUpdated]:
        events = []
        for stream, text in _tails(view).items():
            if watch.tails.get(stream) != text and (watch.running or text):
                watch.tails[stream] = text
                events.append(TailUpdated(watch.machine.id, stream, text.encode("utf-8")))
        return events

    async def _finish(
        self, watch: _Watch, view: InstanceView, command: Command
    ) -> AsyncIterator[MachineEvent]:
        """The run is over: drain the blobs until they match the tails, then the result."""
        async for drained in self._drain(watch, view):
            yield drained
        shortfall = watch.output.shortfall() if watch.output is not None else ""
        if not watch.tails:
            for tail in self._tail_events(watch, view):
                yield tail
        if view.execution_state.lower() == "unknown" and watch.operation_url:
            reason = await self._operation_error(watch)
            state = RunState.FAILED
            if reason.split(":", 1)[0].strip().lower() in AGENT_UNAVAILABLE_CODES:
                state = RunState.SKIPPED
                reason = f"skipped: the agent cannot take commands ({reason})"
            reason = reason or view.provisioning_error or "provisioning failed"
            yield Finished(watch.machine.id, state, view.exit_code, view.started, view.ended,
                           _joined(reason, shortfall))
            return
        elapsed = (view.ended - view.started).total_seconds() if (
            view.started and view.ended) else 0.0
        state, reason = view.outcome(command.timeout, elapsed)
        yield Finished(watch.machine.id, state, view.exit_code, view.started, view.ended,
                       _joined(reason, shortfall))

    async def _drain(self, watch: _Watch, view: InstanceView) -> AsyncIterator[MachineEvent]:
        if watch.output is None:
            # No blobs configured: the 4 KB tails are all the output there is.
            for stream, text in _tails(view).items():
                if text:
                    yield OutputAppended(watch.machine.id, stream, 0, text.encode("utf-8"))
            return
        async for event in watch.output.drain(_tails(view), self.session.pacing.drain_grace):
            yield event

    async def _ended_without_view(
        self, watch: _Watch, error: ArmError | InvalidView
    ) -> AsyncIterator[MachineEvent]:
        if watch.output is not None:
            async for event in watch.output.read(every=True):
                yield event
        machine = watch.machine
        if isinstance(error, ArmError) and error.status == GONE:
            if (machine.id, watch.run_id) in self._canceled:
                yield Finished(machine.id, RunState.CANCELED, error="canceled: the run command "
                               "was deleted, which stopped the script")
            else:
                yield Finished(machine.id, RunState.CANCELED, error="the run command was deleted "
                               "outside fleetrun, which stopped the script")
            return
        yield Finished(machine.id, RunState.FAILED, error=f"lost track of the run: {error}")

    async def _operation_error(self, watch: _Watch) -> str:
        try:
            answer = await self.session.arm.request("GET", watch.operation_url,
                                                    priority=Priority.OPERATION)
            body = answer.json()
        except (ArmError, ValueError) as error:
            return f"provisioning failed (its reason could not be read: {error})"
        error_body = body.get("error") if isinstance(body, dict) else None
        if isinstance(error_body, dict):
            return f"{error_body.get('code', '')}: {error_body.get('message', '')}"
        return ""

    # -- cancel ---------------------------------------------------------------------------

    async def cancel(self, machine: Machine, run_id: str) -> None:
        """Delete the run command, which stops its script, and wait until it is gone."""
        self._canceled.add((machine.id, run_id))
        await self._delete(machine, run_id, wait=True)

    async def _delete(self, machine: Machine, run_id: str, *, wait: bool) -> None:
        path = run_command_path(machine.id, run_id)
        try:
            # A cancel's DELETE stops a script someone waits on; a finished run's frees a slot.
            answer = await self.session.arm.request(
                "DELETE", path, priority=Priority.CANCEL if wait else Priority.CLEANUP)
            if wait:
                await self.session.arm.wait(answer, within=60)
        except ArmError as error:
            if error.status != GONE:
                log.warning("%s: deleting %s failed: %s", machine.name, path, error)
                if wait:
                    raise


def _joined(*reasons: str) -> str:
    """Reasons for one result, in order, the empty ones left out."""
    return "; ".join(reason for reason in reasons if reason)


def _tails(view: InstanceView) -> dict[Stream, str]:
    return {Stream.STDOUT: view.output, Stream.STDERR: view.error}
