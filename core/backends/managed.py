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
from core.azure.blob_errors import BlobError
from core.azure.blob_tail import BlobTailer
from core.azure.blob_urls import redact_sas
from core.azure.budget import Priority
from core.azure.machine_health import refine_health
from core.azure.permission_check import permitted_health
from core.azure.permissions import authorization_failure, role_for
from core.azure.run_commands import (
    InstanceView,
    InvalidView,
    OutputTargets,
    put_body,
    run_command_path,
)
from core.azure.session import AzureSession
from core.backends.base import IfMissing
from core.backends.blob_output import BlobOutput
from core.backends.leftovers import RunCommandFound, delete_until_gone, list_run_commands
from core.events import (
    Finished,
    MachineEvent,
    OutputAppended,
    StateChanged,
    TailUpdated,
    WaitChanged,
)
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
    Waiting,
)
from core.validate import too_big_inline

log = logging.getLogger(__name__)

AGENT_UNAVAILABLE_CODES = frozenset({"vmagentstatuscommunicationerror"})
"""Provisioning errors that mean the agent cannot take commands: skipped, not failed."""
GONE = 404
FORBIDDEN = 403


@dataclass(slots=True)
class _Watch:
    """One machine's run as the client sees it."""

    machine: Machine
    run_id: str
    path: str
    operation_url: str = ""
    targets: OutputTargets | None = None
    """The output blobs named in the PUT (worked out once: a hash and two signed URLs)."""
    output: BlobOutput | None = None
    tails: dict[Stream, str] = field(default_factory=dict)
    running: bool = False
    view: InstanceView | None = None


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

    @property
    def uploads_scripts(self) -> bool:
        """Whether a script over the inline limit goes by ``scriptUri`` (user-delegation
        output storage: uploaded once per run)."""
        output = self.session.output
        return output is not None and output.uploads_scripts

    @property
    def keeps_full_output(self) -> bool:
        """Whether outputs are read whole from blobs; without output storage only the
        instance view's 4 KB tails are (see :mod:`core.output_hint`)."""
        return self.session.output is not None and self.session.blobs is not None

    # -- health ---------------------------------------------------------------------------

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        """Per-machine agent checks for small selections; the inventory's word for large ones
        (each check is an ARM read, and a large fan-out needs its reads for polling). Either
        way the caller's permissions (one read per resource group per session) make a
        machine it may not run on NotPermitted."""
        verdicts = await self.session.permissions.verdicts(machines)
        if len(machines) > self.session.pacing.health_check_limit:
            health = {m.id: m.health for m in machines}
        else:
            health = await refine_health(self.session.arm, machines)
        return {mid: permitted_health(h, verdicts[mid]) if mid in verdicts else h
                for mid, h in health.items()}

    # -- run ------------------------------------------------------------------------------

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncGenerator[MachineEvent, None]:
        watch = _Watch(machine, run_id, run_command_path(machine.id, run_id))
        output = self.session.output
        targets = None
        if output is not None:
            try:
                await output.prepare(run_id, command.timeout, machine)
            except BlobError as error:
                yield Finished(machine.id, RunState.FAILED,
                               error=f"output storage: {redact_sas(str(error))}")
                return
            targets = output.targets(run_id, machine)
        source = None
        if output is not None and output.uploads_scripts and too_big_inline(command.script):
            try:
                source = await output.script_source(run_id, command, command.timeout,
                                                    arc=machine.kind is MachineKind.ARC)
            except BlobError as error:
                yield Finished(machine.id, RunState.FAILED,
                               error=f"script upload: {redact_sas(str(error))}")
                return
        watch.targets = targets
        body = put_body(command, machine.location, targets, source)
        waits = StartWait()
        put = asyncio.ensure_future(self.session.arm.request(
            "PUT", watch.path, json_body=body, priority=Priority.START, waiting=waits.report))
        refused: ArmError | None = None
        try:
            async for changed in waits.follow(machine.id, put):
                yield changed
            answer = put.result()
        except ArmError as error:
            refused = error
        finally:
            if not put.done():
                put.cancel()
                with contextlib.suppress(asyncio.CancelledError, ArmError):
                    await put
        if refused is not None:
            async with contextlib.aclosing(
                    self._not_created(machine, command, run_id, refused)) as events:
                async for event in events:
                    yield event
            return
        watch.operation_url = answer.headers.get("azure-asyncoperation", "")
        yield StateChanged(machine.id, RunState.PENDING, "submitted; waiting for the agent")
        # aclosing: when our consumer stops early, the inner generator's clean-up (delete the
        # run command, stop the poller) must run now, not whenever it is garbage-collected.
        async with contextlib.aclosing(self._watch(watch, command)) as events:
            async for event in events:
                yield event

    async def _not_created(
        self, machine: Machine, command: Command, run_id: str, error: ArmError
    ) -> AsyncGenerator[MachineEvent, None]:
        """The PUT was refused. A provider with another way to run the command (Compute's
        action API) overrides this. A 403 AuthorizationFailed (a grant revoked after the
        check, or no check made) is Skipped: nothing ran, and it spends no error budget."""
        refusal = not_permitted(machine, error)
        if refusal is not None:
            yield refusal
            return
        yield Finished(machine.id, RunState.FAILED, error=f"run command not created: {error}")

    async def attach(
        self, machine: Machine, command: Command, *, run_id: str,
        if_missing: IfMissing = IfMissing.REPORT,
    ) -> AsyncIterator[MachineEvent]:
        """Follow a run command created earlier (``fleetrun attach`` after a crash).

        Its GET answering 404 means it does not exist: ``if_missing`` says whether that is
        a run command that was never created (sent now, or reported NotStarted) or one the
        journal saw start, deleted before its result was read.
        """
        watch = _Watch(machine, run_id, run_command_path(machine.id, run_id))
        params = {"$expand": "instanceView"} if self.expand_instance_view else None
        try:
            InstanceView.parse(await self.session.arm.get(watch.path, params, Priority.CHECK))
        except ArmError as error:
            if error.status != GONE:
                yield Finished(machine.id, RunState.FAILED, error=f"cannot attach: {error}")
                return
            async for event in self._missing_on_attach(machine, command, run_id, if_missing):
                yield event
            return
        except InvalidView as error:
            yield Finished(machine.id, RunState.FAILED, error=f"cannot attach: {error}")
            return
        yield StateChanged(machine.id, RunState.PENDING, "attached; reading its state")
        async with contextlib.aclosing(self._watch(watch, command)) as events:
            async for event in events:
                yield event

    async def _missing_on_attach(
        self, machine: Machine, command: Command, run_id: str, if_missing: IfMissing
    ) -> AsyncIterator[MachineEvent]:
        """The run command of a machine being re-attached does not exist."""
        if if_missing is IfMissing.SUBMIT:
            # Never created: the process died before its PUT reached Azure. Sent now, under
            # the same budget as any PUT.
            async with contextlib.aclosing(self.run(machine, command, run_id=run_id)) as events:
                async for event in events:
                    yield event
        elif if_missing is IfMissing.REPORT:
            yield Finished(machine.id, RunState.NOT_STARTED, error="not started: never sent "
                           "(fleetrun stopped before creating its run command; attach was "
                           "told not to submit)")
        else:
            yield Finished(machine.id, RunState.FAILED, error="result lost: its run command "
                           "was deleted before fleetrun read its result; the output kept is "
                           "what was received before")

    async def _watch(
        self, watch: _Watch, command: Command
    ) -> AsyncGenerator[MachineEvent, None]:
        output, blobs = self.session.output, self.session.blobs
        if output is not None and blobs is not None:
            reads = output.read_urls(watch.run_id, watch.machine)
            # The Linux handler's tails are the files' last 4,096 bytes (reference
            # run-command-handlers.md section 3): a shorter one is the whole output, and its
            # blob need not be read. The Windows handler's encoding is not documented.
            watch.output = BlobOutput(watch.machine.id, watch.machine.name, {
                Stream.STDOUT: BlobTailer(blobs, reads[Stream.STDOUT]),
                Stream.STDERR: BlobTailer(blobs, reads[Stream.STDERR]),
            }, self.session.pacing.blob_interval,
                exact_tails=watch.machine.os is OsType.LINUX)
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
                        blobs.reported(_tails(item))
                    async for appended in blobs.read():
                        yield appended
                now = loop.time()
                if item is None or item == watch.view:
                    # Quiet: a poll found the view as it was, stall_after after it last
                    # changed. Only a poll's answer says so: no answer yet means a slow read
                    # budget, not a silent agent (and a check would spend the same budget).
                    if item is not None and min(
                            now - quiet_since, now - checked_at) >= pacing.stall_after:
                        checked_at = now
                        lost = False
                        async for change in self._check_agent(watch):
                            lost = lost or isinstance(change, Finished)
                            yield change
                        if lost:
                            return
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

    async def _check_agent(self, watch: _Watch) -> AsyncIterator[MachineEvent]:
        """The run went quiet: is the machine's agent still there? (one ARM read)

        A machine that drops off mid-run (VM agent Not Ready, Arc Disconnected) leaves its
        run command frozen, with no error, for as long as the agent stays away: Azure only
        reports a machine gone after missing heartbeats for minutes, so one answer saying so
        is the word to act on. The machine ends with the reason and the output it sent
        (:meth:`_agent_lost`) instead of waiting for a timeout that says nothing.
        """
        health = (await refine_health(self.session.arm, [watch.machine]))[watch.machine.id]
        if health.status in (HealthStatus.READY, HealthStatus.UNKNOWN):
            return
        async for event in self._agent_lost(watch, health):
            yield event

    async def _agent_lost(self, watch: _Watch, health: Health) -> AsyncIterator[MachineEvent]:
        """End a machine whose agent went away: what it sent so far, then why it ended.

        Failed, not Unknown: the run must end (Unknown is not an end), count against the
        error budget like any run without a result, and be picked up by 'rerun failed' once
        the agent is back. Before the agent took the command, nothing ran: Skipped.
        """
        machine = watch.machine
        if watch.output is not None:
            async for event in watch.output.read(every=True):
                yield event
        elif watch.view is not None:
            # No blobs: the tails are all the output there is.
            async for drained in self._drain(watch, watch.view):
                yield drained
        detail = f" ({health.detail})" if health.detail else ""
        view = watch.view
        started = view.started if view is not None else None
        if watch.running:
            yield Finished(machine.id, RunState.FAILED, None, started, None,
                           f"agent lost during the run: {health.status.value}{detail}; "
                           "the output is what it sent before")
        else:
            yield Finished(machine.id, RunState.SKIPPED, error="skipped: the agent did not "
                           f"take the command: {health.status.value}{detail}")

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
                # Skipped only if it never started: never Skipped after it ran.
                if view.started is not None:
                    reason = f"agent lost during the run ({reason})"
                else:
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
        if not wait:
            await self._delete_until_gone(machine, run_id)
            return
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


    async def _delete_until_gone(self, machine: Machine, run_id: str) -> None:
        """DELETE a finished (or abandoned) run command, again after a pause while it fails.

        A VM holds at most 25 run commands: one left behind by a passing outage would fill
        it run after run. What still fails after the pauses is logged, and 'fleetrun
        cleanup' removes it.
        """
        path = run_command_path(machine.id, run_id)
        try:
            await delete_until_gone(self.session.arm, path,
                                    self.session.pacing.delete_retry_pauses)
        except ArmError as error:
            log.warning("%s: deleting %s failed, left behind ('fleetrun cleanup' removes "
                        "it): %s", machine.name, path, error)

    # -- leftovers (fleetrun cleanup) -----------------------------------------------------

    async def leftovers(self, machine: Machine) -> list[RunCommandFound]:
        """fleetrun's run commands still on ``machine`` (one ARM read per page)."""
        return await list_run_commands(self.session.arm, machine.id)

    async def remove_leftover(self, machine: Machine, name: str) -> None:
        """Delete one of them, retried like the DELETE at the end of a run.

        Raises:
            ArmError: it could not be deleted.
        """
        path = f"{machine.id.rstrip('/')}/runCommands/{name}"
        await delete_until_gone(self.session.arm, path, self.session.pacing.delete_retry_pauses)

    async def remove_run(self, machine: Machine, run_id: str) -> None:
        """Delete run ``run_id``'s run command, retried like the DELETE at the end of a run.

        Raises:
            ArmError: it could not be deleted.
        """
        await delete_until_gone(self.session.arm, run_command_path(machine.id, run_id),
                                self.session.pacing.delete_retry_pauses)


class StartWait:
    """A machine's PUT waiting on the ARM budget, as the machine's WaitChanged events.

    The client reports each change as it happens; the run's generator yields only the
    latest one when it next gets to run, so a PUT granted at once reports nothing and a
    thousand queued PUTs cost one event each, not one per change of the queue.
    """

    def __init__(self) -> None:
        self.latest: Waiting | None = None
        self._changed = asyncio.Event()

    def report(self, waiting: Waiting | None) -> None:
        self.latest = waiting
        self._changed.set()

    async def follow(self, machine_id: MachineId, request: asyncio.Future[Any]
                     ) -> AsyncIterator[WaitChanged]:
        """The wait's changes until ``request`` is done."""
        request.add_done_callback(lambda _done: self._changed.set())
        shown: Waiting | None = None
        while True:
            await self._changed.wait()
            self._changed.clear()
            if request.done():
                return
            if self.latest is not shown:
                shown = self.latest
                yield WaitChanged(machine_id, shown)


def not_permitted(machine: Machine, error: ArmError, reason: str = "") -> Finished | None:
    """A 403 ``AuthorizationFailed`` as the machine's Skipped result, "not permitted: needs
    `ACTION` (ROLE) at SCOPE" (never a script failure); None for any other error."""
    if error.status != FORBIDDEN or error.code.lower() != "authorizationfailed":
        return None
    named = authorization_failure(error.message)
    if named is None:
        return Finished(machine.id, RunState.SKIPPED, error=_joined(
            reason, f"not permitted: {error.message}"))
    action, scope = named
    role = role_for(action)
    return Finished(machine.id, RunState.SKIPPED, error=_joined(
        reason, f"not permitted: needs `{action}`" + (f" ({role})" if role else "")
        + f" at {scope}"))


def _joined(*reasons: str) -> str:
    """Reasons for one result, in order, the empty ones left out."""
    return "; ".join(reason for reason in reasons if reason)


def _tails(view: InstanceView) -> dict[Stream, str]:
    return {Stream.STDOUT: view.output, Stream.STDERR: view.error}
