"""One run of one run command on one machine, as the managed handler carries it out.

The sequence follows the Linux handler (``run-command-handlers.md`` sections 3, 4 and 7):
the agent notices the new goal state, reports ``Running``, creates (or recreates) the
output blobs — a failure there is ``Failed`` with exit code -101 and the script never runs —
starts the script, and every ``flush_interval`` reports the 4096-byte tails and appends the
new bytes to each blob in one Append Block. At the end it appends what is left and reports
``Succeeded``/``Failed`` with the exit code. A timeout kills the script: ``Failed``, -1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from core.sandbox.executors import (
    SIGNALED_EXIT,
    STREAMS,
    ExecutionFailure,
    Executor,
    ProcessExecutor,
    Script,
    SimulatedExecutor,
)
from core.sandbox.fleet import Faults, FleetSpec
from core.sandbox.identities import ManagedIdentity
from core.sandbox.machines import SimMachine
from core.sandbox.stand_in import PowerShellStandIn

log = logging.getLogger(__name__)

RUNNING = "Execution in progress"
COMPLETED = "Execution completed"


def failed_message(exit_code: int) -> str:
    return (
        "Execution failed: failed to execute command: command terminated with exit "
        f"status={exit_code}"
    )


class BlobSink(Protocol):
    """Where one stream's full output goes: an append blob behind a SAS URL."""

    async def create(self) -> None: ...

    async def append(self, data: bytes) -> None: ...


class BlobSinkError(Exception):
    """A blob could not be created or appended to; the message says why."""


SinkFactory = Callable[[str, ManagedIdentity | None], BlobSink]
ScriptFetcher = Callable[[str, ManagedIdentity | None], Awaitable[str]]


@dataclass(slots=True)
class InstanceView:
    """What the agent last reported: the run command's ``instanceView``."""

    execution_state: str = "Unknown"
    execution_message: str = ""
    exit_code: int = 0
    output: str = ""
    error: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "executionState": self.execution_state,
            "executionMessage": self.execution_message,
            "exitCode": self.exit_code,
            "output": self.output,
            "error": self.error,
        }
        if self.start_time is not None:
            view["startTime"] = _timestamp(self.start_time)
        if self.end_time is not None:
            view["endTime"] = _timestamp(self.end_time)
        return view


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class AgentSettings:
    flush_interval: float
    pickup_delay: float
    agent_timeout: float
    timeout_state: str
    stuck: bool = False
    blob_delay: float = 0.0
    disconnect_after: float | None = None

    @classmethod
    def of(cls, fleet: FleetSpec, faults: Faults) -> AgentSettings:
        """The agent's timings from the fleet file, its faults from the machine's."""
        return cls(flush_interval=fleet.flush_interval, pickup_delay=fleet.pickup_delay,
                   agent_timeout=fleet.agent_timeout, timeout_state=fleet.timeout_state,
                   stuck=faults.stuck, blob_delay=faults.blob_delay,
                   disconnect_after=faults.disconnect_after)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """The run command's properties, as the agent receives them for one sequence number."""

    name: str
    seq: int
    script: str
    script_uri: str
    parameters: tuple[tuple[str, str], ...]
    timeout: int
    run_as_user: str
    output_blob_uri: str
    error_blob_uri: str
    output_identity: ManagedIdentity | None = None
    error_identity: ManagedIdentity | None = None
    script_identity: ManagedIdentity | None = None
    """``*ManagedIdentity`` of the run command: who writes each blob, who reads the script."""


@dataclass(eq=False)
class Execution:
    """The life of one sequence number of one run command.

    ``view`` is what GET returns; ``started`` and ``finished`` drive ``provisioningState``;
    ``agent_error`` is set when the agent never took the run (``(code, message)``).
    """

    machine: SimMachine
    request: RunRequest
    settings: AgentSettings
    sinks: SinkFactory
    fetch_script: ScriptFetcher
    rng: random.Random
    view: InstanceView = field(default_factory=InstanceView)
    started: bool = False
    finished: bool = False
    agent_error: tuple[str, str] | None = None
    _task: asyncio.Task[None] | None = None
    _executor: Executor | None = None
    _silent: bool = False
    _frozen: bool = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"sandbox-run-{self.request.name}")

    async def stop(self) -> None:
        """Kill the script (a re-PUT or a DELETE) and stop reporting."""
        self._silent = True
        if self._executor is not None:
            self._executor.kill()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def reporting(self) -> bool:
        """Whether the agent still tells the service anything about this run."""
        return not self._silent and not self._frozen and self.machine.can_run

    def _report(self, **changes: Any) -> None:
        if not self.reporting:
            return
        for key, value in changes.items():
            setattr(self.view, key, value)

    async def _run(self) -> None:
        try:
            await self._carry_out()
        except asyncio.CancelledError:
            raise
        except Exception:  # the sandbox must keep serving; the run shows the failure
            log.exception("sandbox run %s on %s crashed", self.request.name, self.machine.name)
            self._finish(-1, "Execution failed: internal sandbox error (see the sandbox log)")

    async def _carry_out(self) -> None:
        settings = self.settings
        await asyncio.sleep(settings.pickup_delay)
        if not await self._agent_takes_it():
            return
        if settings.disconnect_after is not None:
            asyncio.get_running_loop().call_later(settings.disconnect_after, self._disconnect)
        self._report(
            execution_state="Running",
            execution_message=RUNNING,
            start_time=datetime.now(UTC),
        )
        self.started = True
        # A stuck agent said "Running" and then nothing more, whatever the script does.
        self._frozen = settings.stuck
        if settings.blob_delay:
            await asyncio.sleep(settings.blob_delay)
        try:
            sinks = await self._create_blobs()
            executor = await self._start_script()
        except ExecutionFailure as failure:
            self._finish(failure.exit_code, f"Execution failed: {failure}")
            return
        self._executor = executor
        offsets = dict.fromkeys(STREAMS, 0)
        exit_code, timed_out = await self._wait_and_report(executor, sinks, offsets)
        await self._flush(executor, sinks, offsets)
        self._refresh_tails(executor)
        if timed_out and settings.timeout_state == "TimedOut":
            self._finish(SIGNALED_EXIT, "Execution timed out", state="TimedOut")
        elif exit_code == 0:
            self._finish(0, COMPLETED, state="Succeeded")
        else:
            self._finish(exit_code, failed_message(exit_code))

    async def _agent_takes_it(self) -> bool:
        machine = self.machine
        if not machine.agent_supports_run_commands:
            self.agent_error = (
                "RunCommandNotSupported",
                f"The Connected Machine agent on '{machine.name}' is version "
                f"{machine.spec.agent_version}; run commands need version 1.33 or later. "
                "Upgrade the agent (azcmagent) and try again.",
            )
            return False
        if machine.can_run and machine.local_block:
            # Refused and reported as a failure (run-command-handlers.md 6). The reference
            # gives no error code or text for it: these are the sandbox's.
            publisher, _, kind = machine.handler.rpartition(".")
            self.agent_error = (
                "ExtensionBlocked",
                f"The Connected Machine agent on '{machine.name}' refused extension "
                f"{publisher}/{kind}: it is blocked by the agent's local configuration "
                f"({machine.local_block}). Change it on the machine with azcmagent config.",
            )
            return False
        if machine.can_run:
            return True
        if not machine.is_vm:
            # A disconnected Arc agent never hears of the run: Creating/Unknown for good.
            await asyncio.Event().wait()
        if await self._agent_recovers():
            return True
        self.agent_error = (
            "VMAgentStatusCommunicationError",
            f"VM '{machine.name}' has not reported status for VM agent or extensions. Please "
            "verify the VM has a running VM agent and can establish outbound connections to "
            "Azure storage.",
        )
        return False

    async def _agent_recovers(self) -> bool:
        # Nothing in the sandbox brings an agent back yet, so one look at the deadline will do.
        await asyncio.sleep(self.settings.agent_timeout)
        return self.machine.can_run

    def _disconnect(self) -> None:
        self.machine.disconnect()

    async def _create_blobs(self) -> dict[str, BlobSink]:
        sinks: dict[str, BlobSink] = {}
        request = self.request
        uris = {"stdout": (request.output_blob_uri, request.output_identity),
                "stderr": (request.error_blob_uri, request.error_identity)}
        for stream, (uri, identity) in uris.items():
            if not uri:
                continue
            try:
                sink = self.sinks(uri, self._usable(identity))
                await sink.create()
            except BlobSinkError as exc:
                raise ExecutionFailure(
                    -101,
                    f"failed to create the {'output' if stream == 'stdout' else 'error'} blob: "
                    f"{exc}. Provide a SAS URL with read, append, create and write permissions, "
                    "or a managed identity with the Storage Blob Data Contributor role",
                ) from None
            sinks[stream] = sink
        return sinks

    def _usable(self, identity: ManagedIdentity | None) -> ManagedIdentity | None:
        """The identity the machine can present: Arc's agent does not authenticate blobs
        with managed identities (azure-storage-and-scale-sets.md 3), so there it is none."""
        return identity if self.machine.is_vm else None

    async def _start_script(self) -> Executor:
        machine, request = self.machine, self.request
        executor: Executor
        if machine.spec.executor == "simulated":
            executor = SimulatedExecutor(machine.spec.simulate, machine.name, self.rng)
        elif machine.stand_in:
            executor = PowerShellStandIn(await self._script_text(), request.parameters,
                                         machine.computer_name, machine.spec.simulate.duration,
                                         self.rng)
        else:
            text = await self._script_text()
            script = Script(
                text=text,
                windows=machine.windows,
                parameters=request.parameters,
                machine_name=machine.computer_name,
                run_command_name=request.name,
                seq=request.seq,
                run_as_user=request.run_as_user,
            )
            self._clean_older_runs()
            executor = ProcessExecutor(
                script, machine.run_dir(request.name, request.seq), machine.home
            )
        await executor.start()
        return executor

    async def _script_text(self) -> str:
        request = self.request
        if not request.script_uri:
            return request.script
        try:
            return await self.fetch_script(request.script_uri,
                                           self._usable(request.script_identity))
        except BlobSinkError as exc:
            raise ExecutionFailure(-100, f"failed to download the script: {exc}") from None

    def _clean_older_runs(self) -> None:
        """Keep only the newest sequence's directory, as the handler's cleanup does."""
        parent = self.machine.run_dir(self.request.name, self.request.seq).parent
        if parent.is_dir():
            for old in parent.iterdir():
                if old.name != str(self.request.seq):
                    shutil.rmtree(old, ignore_errors=True)

    async def _wait_and_report(
        self, executor: Executor, sinks: dict[str, BlobSink], offsets: dict[str, int]
    ) -> tuple[int, bool]:
        timeout = self.request.timeout if self.request.timeout > 0 else None
        waiter = asyncio.ensure_future(executor.wait())
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        timed_out = False
        try:
            while True:
                wait_for = self.settings.flush_interval
                if deadline is not None:
                    wait_for = max(0.0, min(wait_for, deadline - loop.time()))
                done, _ = await asyncio.wait({waiter}, timeout=wait_for)
                if done:
                    return waiter.result(), timed_out
                if deadline is not None and loop.time() >= deadline and not timed_out:
                    timed_out = True
                    executor.kill()
                    deadline = None  # else every later wait has a zero timeout: a busy loop
                    continue
                self._refresh_tails(executor)
                await self._flush(executor, sinks, offsets)
        finally:
            if not waiter.done():
                executor.kill()
                waiter.cancel()

    def _refresh_tails(self, executor: Executor) -> None:
        self._report(
            output=executor.tail("stdout").decode("utf-8", errors="replace"),
            error=executor.tail("stderr").decode("utf-8", errors="replace"),
        )

    async def _flush(
        self, executor: Executor, sinks: dict[str, BlobSink], offsets: dict[str, int]
    ) -> None:
        if not self.reporting:
            return
        for stream, sink in sinks.items():
            data = executor.read(stream, offsets[stream])
            if not data:
                continue
            try:
                await sink.append(data)
            except BlobSinkError as exc:
                # The handler keeps its offset and retries the same bytes on the next tick.
                log.warning("sandbox: append to the %s blob failed: %s", stream, exc)
                continue
            offsets[stream] += len(data)

    def _finish(self, exit_code: int, message: str, *, state: str = "Failed") -> None:
        if not self.reporting:
            return
        self._report(
            execution_state=state,
            execution_message=message,
            exit_code=exit_code,
            end_time=datetime.now(UTC),
        )
        self.finished = True
