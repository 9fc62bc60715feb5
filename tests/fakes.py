"""A scripted backend for engine tests: each machine follows a small scenario."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

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
    utc_now,
)


@dataclass
class Scenario:
    """What one machine does: print, wait, exit — or misbehave."""

    stdout: bytes = b"ok\n"
    stderr: bytes = b""
    duration: float = 0.0
    exit_code: int = 0
    hang: bool = False
    """Never finish and ignore the command timeout (a stuck agent)."""
    raises: Exception | None = None
    no_result: bool = False
    """End the event stream without a Finished event."""
    chunks: int = 1
    release: asyncio.Event | None = None
    """Finish only once this is set: a test decides when, instead of racing a duration."""
    error: str = ""
    """The failure's message, as the service gives it (default ``exit status=N``)."""


@dataclass
class FakeBackend:
    scenarios: dict[MachineId, Scenario] = field(default_factory=dict)
    default: Scenario = field(default_factory=Scenario)
    running: int = 0
    max_running: int = 0
    started: list[MachineId] = field(default_factory=list)
    finished: list[MachineId] = field(default_factory=list)
    canceled: list[MachineId] = field(default_factory=list)
    cancel_calls: list[MachineId] = field(default_factory=list)
    live: set[MachineId] = field(default_factory=set)

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        return {m.id: m.health for m in machines}

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        sc = self.scenarios.get(machine.id, self.default)
        self.started.append(machine.id)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        self.live.add(machine.id)
        started = utc_now()
        try:
            yield StateChanged(machine.id, RunState.RUNNING)
            if sc.raises is not None:
                raise sc.raises
            offsets = {Stream.STDOUT: 0, Stream.STDERR: 0}
            for stream, data in ((Stream.STDOUT, sc.stdout), (Stream.STDERR, sc.stderr)):
                step = max(1, len(data) // sc.chunks) if data else 1
                for i in range(0, len(data), step):
                    chunk = data[i : i + step]
                    yield OutputAppended(machine.id, stream, offsets[stream], chunk)
                    offsets[stream] += len(chunk)
            if sc.hang:
                await asyncio.sleep(3600)
            if sc.duration:
                await asyncio.sleep(sc.duration)
            if sc.release is not None:
                await sc.release.wait()
            if sc.no_result:
                return
            yield TailUpdated(machine.id, Stream.STDOUT, sc.stdout[-4096:])
            yield TailUpdated(machine.id, Stream.STDERR, sc.stderr[-4096:])
            state = RunState.SUCCEEDED if sc.exit_code == 0 else RunState.FAILED
            error = "" if sc.exit_code == 0 else sc.error or f"exit status={sc.exit_code}"
            yield Finished(machine.id, state, sc.exit_code, started, utc_now(), error)
            self.finished.append(machine.id)
        except asyncio.CancelledError:
            self.canceled.append(machine.id)
            raise
        finally:
            self.running -= 1
            self.live.discard(machine.id)

    async def cancel(self, machine: Machine, run_id: str) -> None:
        self.cancel_calls.append(machine.id)


def machines(count: int, *, prefix: str = "m", unhealthy: Sequence[int] = ()) -> list[Machine]:
    result = []
    for i in range(count):
        health = (
            Health(HealthStatus.NOT_READY, "agent silent")
            if i in unhealthy
            else Health(HealthStatus.READY)
        )
        result.append(
            Machine(
                id=f"{prefix}{i:03d}",
                name=f"{prefix}{i:03d}",
                kind=MachineKind.LOCAL,
                os=OsType.LINUX,
                health=health,
            )
        )
    return result
