"""Azure VMs through the action Run Command API (``POST .../virtualMachines/{vm}/runCommand``).

Per machine: POST the script (a write, under the ARM budget as a managed PUT is) → follow its
long-running operation (reads, polled as the managed path polls instance views) → at the end,
the last 4,096 bytes of each stream are the whole output, and there is no exit code.

The action API's own rules shape the rest (azure-run-command.md 3.3, azure-storage-and-scale-
sets.md 7.2): one action run per VM at a time, so a 409 ``Conflict`` ("Run command extension
execution is in progress") means the machine is busy, not failed: it waits Queued and tries
again with backoff until the VM is free or the run's deadline passes. A running script cannot
be canceled: a cancel says so (:class:`ActionCannotCancel`) and the run ends in fleetrun only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

import httpx

from core.azure.action_commands import (
    ACTION_NOTE,
    CANNOT_CANCEL,
    CONFLICT_STATUS,
    ActionCannotCancel,
    InvalidActionResult,
    action_body,
    action_path,
    parse_result,
)
from core.azure.arm import ArmError
from core.azure.budget import Priority
from core.azure.session import AzureSession
from core.backends.managed import AGENT_UNAVAILABLE_CODES, StartWait, not_permitted
from core.events import (
    Finished,
    MachineEvent,
    OutputAppended,
    StateChanged,
    TailUpdated,
    WaitChanged,
)
from core.model import Command, Machine, MachineId, RunState, Stream, Waiting, utc_now

CONFLICT_BACKOFF_CAP = 60.0
"""Longest pause between two tries on a busy VM (the first is the poll interval)."""
TERMINAL = frozenset({"succeeded", "failed", "canceled", "cancelled"})


class ActionRunCommands:
    """Runs commands on Azure VMs through the action API (no blobs, no exit code).

    Args:
        session: The ARM client and settings of the fleet (its blob access is not used).
    """

    def __init__(self, session: AzureSession) -> None:
        self.session = session
        self._running: dict[tuple[MachineId, str], asyncio.Event] = {}
        """Runs whose POST was accepted and not ended: a cancel of one cannot stop it."""

    async def run(
        self, machine: Machine, command: Command, *, run_id: str, reason: str = ""
    ) -> AsyncGenerator[MachineEvent, None]:
        """The machine's events; ``reason`` (why the action API, when fleetrun chose it) is
        said when the run starts and in its result."""
        if command.run_as_user:
            yield Finished(machine.id, RunState.SKIPPED, error=_joined(
                reason, "skipped: the action API runs scripts as root/System; --run-as "
                "needs the managed API"))
            return
        answer: httpx.Response | None = None
        async with contextlib.aclosing(self._post(machine, command, reason)) as posting:
            async for event in posting:
                if isinstance(event, httpx.Response):
                    answer = event
                else:
                    yield event
        if answer is None:
            return
        key = (machine.id, run_id)
        canceled = self._running[key] = asyncio.Event()
        started = utc_now()
        try:
            yield StateChanged(machine.id, RunState.RUNNING, _joined(
                reason, "sent through the action API (it reports only at the end)"), started)
            async for event in self._follow(machine, answer, canceled, started, reason):
                yield event
        finally:
            self._running.pop(key, None)

    async def _post(
        self, machine: Machine, command: Command, reason: str
    ) -> AsyncGenerator[MachineEvent | httpx.Response, None]:
        """POST until accepted (the answer, last), waiting Queued while the VM is busy."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + command.timeout if command.timeout > 0 else None
        pause = self.session.pacing.poll_interval
        busy_since: float | None = None
        body = action_body(command)
        while True:
            waits = StartWait()
            post = asyncio.ensure_future(self.session.arm.request(
                "POST", action_path(machine.id), json_body=body, priority=Priority.START,
                waiting=waits.report))
            try:
                async for changed in waits.follow(machine.id, post):
                    if busy_since is None:
                        yield changed
                answer = post.result()
            except ArmError as error:
                if not _busy(error):
                    yield _refused(machine, error, reason)
                    return
                if busy_since is None:
                    busy_since = loop.time()
                    yield WaitChanged(machine.id, Waiting.QUEUED)
                if deadline is not None and loop.time() + pause > deadline:
                    yield Finished(machine.id, RunState.NOT_STARTED, error=_joined(
                        reason, f"not started: the VM was busy with another action run "
                        f"command for {loop.time() - busy_since:.0f} s, until the "
                        f"{command.timeout} s timeout ({error.code}: one at a time per VM)"))
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, CONFLICT_BACKOFF_CAP)
                continue
            finally:
                if not post.done():
                    post.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ArmError):
                        await post
            yield answer
            return

    async def _follow(
        self, machine: Machine, answer: httpx.Response, canceled: asyncio.Event,
        started: datetime, reason: str,
    ) -> AsyncIterator[MachineEvent]:
        status_url = answer.headers.get("azure-asyncoperation", "")
        location = answer.headers.get("location", "")
        if answer.status_code == 200 or not (status_url or location):
            body = _json(answer)
        else:
            try:
                body = await self._poll(status_url, location, canceled)
            except ArmError as error:
                yield _failed(machine, started, _joined(reason, f"action run failed: {error}"),
                              error.code)
                return
            if body is None:
                yield Finished(machine.id, RunState.CANCELED, None, started, utc_now(),
                               _joined(reason, f"canceled in fleetrun only: {CANNOT_CANCEL}"))
                return
        try:
            output = parse_result(body)
        except InvalidActionResult as error:
            yield Finished(machine.id, RunState.FAILED, None, started, utc_now(),
                           _joined(reason, str(error)))
            return
        for stream, data in ((Stream.STDOUT, output.stdout), (Stream.STDERR, output.stderr)):
            if data:
                yield OutputAppended(machine.id, stream, 0, data)
        yield TailUpdated(machine.id, Stream.STDOUT, output.stdout)
        if output.stderr:
            yield TailUpdated(machine.id, Stream.STDERR, output.stderr)
        yield Finished(machine.id, RunState.SUCCEEDED, None, started, utc_now(),
                       _joined(reason, ACTION_NOTE))

    async def _poll(self, status_url: str, location: str, canceled: asyncio.Event) -> Any:
        """The operation's result once it ends; None when fleetrun canceled it meanwhile.

        The status URL (``Azure-AsyncOperation``) says InProgress/Succeeded/Failed; its
        ``properties.output`` carries the result where ARM puts it there, else the
        ``Location`` URL gives it. Without a status URL, ``Location`` answers 202 until done.

        Raises:
            ArmError: the operation failed, or a poll was refused.
        """
        interval = self.session.pacing.poll_interval
        priority = Priority.FIRST_POLL
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await canceled.wait()
            if canceled.is_set():
                return None
            if status_url:
                body = _json(await self.session.arm.request("GET", status_url,
                                                            priority=priority))
                state = str(body.get("status", "")).lower() if isinstance(body, dict) else ""
                if state in TERMINAL:
                    if state != "succeeded":
                        error = body.get("error") or {}
                        raise ArmError(200, str(error.get("code") or f"Operation{state.title()}"),
                                       str(error.get("message") or f"the operation {state}"))
                    properties = body.get("properties")
                    if isinstance(properties, dict) and properties.get("output") is not None:
                        return body
                    if not location:
                        return body
                    return _json(await self.session.arm.request(
                        "GET", location, priority=Priority.OPERATION))
            else:
                answer = await self.session.arm.request("GET", location, priority=priority)
                if answer.status_code != 202:
                    return _json(answer)
            priority = Priority.POLL

    async def cancel(self, machine: Machine, run_id: str) -> None:
        """Ends a run in fleetrun; its script goes on on the VM, which the raised error says.

        Raises:
            ActionCannotCancel: the action API runs the script: nothing can stop it.
        """
        canceled = self._running.get((machine.id, run_id))
        if canceled is None:
            return  # never sent, or already over: nothing runs
        canceled.set()
        raise ActionCannotCancel(CANNOT_CANCEL, where=machine.name)


def _busy(error: ArmError) -> bool:
    """409 Conflict "Run command extension execution is in progress": another action run
    (ours, another engineer's, or a hung previous one) holds the VM."""
    return error.status == CONFLICT_STATUS and (
        error.code.lower() == "conflict" or "in progress" in error.message.lower())


def _refused(machine: Machine, error: ArmError, reason: str) -> Finished:
    refusal = not_permitted(machine, error, reason)
    if refusal is not None:
        return refusal
    return Finished(machine.id, RunState.FAILED,
                    error=_joined(reason, f"action run command not accepted: {error}"))


def _failed(machine: Machine, started: datetime, text: str, code: str) -> Finished:
    if code.lower() in AGENT_UNAVAILABLE_CODES:
        return Finished(machine.id, RunState.SKIPPED, error=f"skipped: the agent cannot take "
                        f"commands ({text})")
    return Finished(machine.id, RunState.FAILED, None, started, utc_now(), text)


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _joined(*reasons: str) -> str:
    return "; ".join(reason for reason in reasons if reason)
