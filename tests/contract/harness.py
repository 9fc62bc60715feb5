"""Drive any :class:`Backend` and record what a user of it would see.

A backend joins the contract suite by providing a :class:`BackendHarness` (see
``conftest.py``). Nothing here knows which backend it drives.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.backends.base import Backend
from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.model import (
    Command,
    CommandId,
    Machine,
    Parameter,
    RunApi,
    RunState,
    Stream,
    new_run_id,
)

RUN_LIMIT = 30.0
"""No contract test needs longer: a hung backend fails instead of stalling the suite."""


@dataclass
class Result:
    """Everything one ``run`` yielded, plus the streams reassembled from it."""

    events: list[MachineEvent] = field(default_factory=list)
    """Every event in order. With ``keep_output=False`` OutputAppended data is dropped."""
    output: dict[Stream, bytearray] = field(
        default_factory=lambda: {s: bytearray() for s in Stream}
    )
    sizes: dict[Stream, int] = field(default_factory=lambda: dict.fromkeys(Stream, 0))
    hashes: dict[Stream, Any] = field(default_factory=lambda: {s: hashlib.sha256() for s in Stream})
    tails: dict[Stream, bytes] = field(default_factory=dict)
    """The last TailUpdated of each stream."""
    elapsed: float = 0.0

    @property
    def stdout(self) -> bytes:
        return bytes(self.output[Stream.STDOUT])

    @property
    def stderr(self) -> bytes:
        return bytes(self.output[Stream.STDERR])

    @property
    def finished(self) -> Finished:
        found = [e for e in self.events if isinstance(e, Finished)]
        assert len(found) == 1, f"expected exactly one Finished, got {found}"
        return found[0]

    def add(self, event: MachineEvent, *, keep_output: bool) -> None:
        if isinstance(event, OutputAppended):
            stream = event.stream
            assert event.offset == self.sizes[stream], (
                f"{stream} offset {event.offset} after {self.sizes[stream]} bytes: not contiguous"
            )
            self.sizes[stream] += len(event.data)
            self.hashes[stream].update(event.data)
            if keep_output:
                self.output[stream] += event.data
            else:
                event = OutputAppended(event.machine_id, stream, event.offset, b"")
        elif isinstance(event, TailUpdated):
            self.tails[event.stream] = event.tail
        self.events.append(event)


@dataclass
class Running:
    """A run being collected in a background task."""

    run_id: str
    result: Result
    task: asyncio.Task[Result]

    async def wait_for(self, pattern: str, within: float = 10.0) -> re.Match[bytes]:
        """The first match of ``pattern`` in stdout, once it has arrived."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + within
        while (match := regex.search(self.result.stdout)) is None:
            assert not self.task.done(), f"run ended before {pattern!r}: {self.result.events}"
            assert time.monotonic() < deadline, f"no {pattern!r} in {self.result.stdout!r}"
            await asyncio.sleep(0.02)
        return match

    async def finish(self, within: float = 10.0) -> Result:
        return await finish(self.task, within)

    async def wait_running(self, within: float = 10.0) -> None:
        """Until the backend says the script runs (for a backend that reports no output
        before the end)."""
        deadline = time.monotonic() + within
        while not any(isinstance(e, StateChanged) and e.state is RunState.RUNNING
                      for e in self.result.events):
            assert not self.task.done(), f"run ended before it ran: {self.result.events}"
            assert time.monotonic() < deadline, f"not running: {self.result.events}"
            await asyncio.sleep(0.02)


@dataclass
class BackendHarness:
    """One backend under test and a Linux machine it can reach."""

    name: str
    backend: Backend
    machine: Machine
    started: list[Running] = field(default_factory=list)
    unnamed_values_unquoted: bool = False
    """The Azure handler appends unnamed values to ``bash -c`` unquoted (shell-split)."""
    tails_are_text: bool = False
    """The instance view carries tails as JSON text: a cut character becomes U+FFFD."""
    api: RunApi = RunApi.AUTO
    """The Run Command API the harness's commands ask for (Azure VMs)."""
    # What the action Run Command API cannot do (azure-run-command.md 3.3): each test checks
    # what such a backend does instead.
    exit_codes: bool = True
    """False: no exit code; Succeeded means the handler ran the script, whatever it exited."""
    full_output: bool = True
    """False: the output is each stream's last 4,096 bytes, as text, at the end only."""
    stops_scripts: bool = True
    """False: a timeout or cancel ends the run in fleetrun only; the script goes on."""
    parallel_runs: bool = True
    """False: one run per machine at a time; another waits (Queued) until it is free."""
    parameters_in_script: bool = False
    """The Linux action handler sets named values with ``export`` lines it puts before the
    script, and also passes them as positional arguments (unnamed ones are named argN)."""

    def linux_machine(self) -> Machine:
        return self.machine

    def command(self, script: str, *params: Parameter, timeout: int = 60) -> Command:
        return Command(CommandId.SHELL, script, parameters=params, timeout=timeout,
                       api=self.api)

    async def collect(
        self, command: Command, *, keep_output: bool = True, run_id: str | None = None
    ) -> Result:
        """Run ``command`` to completion and gather every event."""
        result = Result()
        coro = self._collect_into(result, command, run_id or new_run_id(), keep_output)
        return await finish(asyncio.create_task(coro))

    def start(self, command: Command) -> Running:
        """Start collecting in a background task, to act on the run while it goes."""
        run_id, result = new_run_id(), Result()
        task = asyncio.create_task(self._collect_into(result, command, run_id, True))
        self.started.append(Running(run_id, result, task))
        return self.started[-1]

    async def stop_leftovers(self) -> None:
        """Stop runs a failed test left going, so they do not outlive it."""
        for running in self.started:
            if not running.task.done():
                await self.backend.cancel(self.machine, running.run_id)
                running.task.cancel()
                await asyncio.wait({running.task}, timeout=5)

    async def _collect_into(
        self, result: Result, command: Command, run_id: str, keep_output: bool
    ) -> Result:
        began = time.monotonic()
        async for event in self.backend.run(self.machine, command, run_id=run_id):
            result.add(event, keep_output=keep_output)
        result.elapsed = time.monotonic() - began
        return result


async def finish(task: asyncio.Task[Result], within: float = RUN_LIMIT) -> Result:
    """The task's result (or exception); a failure, not a hang, if the run does not end."""
    done, _ = await asyncio.wait({task}, timeout=within)
    if not done:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        cleanup = "" if done else ", and did not clean up within 5 s of a cancel"
        raise AssertionError(f"the run did not end within {within} s{cleanup}")
    return task.result()


# Processes are checked through this machine's /proc: every harness's scripts run here
# (LocalBackend directly, SSH through a loopback sshd, the Azure emulator as local processes).


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live script process. A reaped or zombie one has no cmdline;
    a PID reused by something else would not be a shell or a sleep."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"sleep" in cmdline or b"bash" in cmdline


async def survivors(pids: Iterable[int], within: float = 2.0) -> list[int]:
    """The PIDs still alive after giving them ``within`` seconds to go."""
    deadline = time.monotonic() + within
    while alive := [p for p in pids if pid_alive(p)]:
        if time.monotonic() >= deadline:
            return alive
        await asyncio.sleep(0.05)
    return []


def command_lines() -> list[bytes]:
    """Every process's command line on this machine, as raw bytes."""
    lines = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                lines.append(Path(entry.path, "cmdline").read_bytes())
            except OSError:
                continue  # exited while we looked
    return lines
