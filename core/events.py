"""Events: the only way facts flow from backends through the engine to subscribers.

Each is a small immutable value. Backends yield the machine-level ones; the fan-out engine
adds the run-level ones and publishes all of them in the order they happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.model import MachineId, RunState, Stream, Waiting, utc_now


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A machine entered a non-terminal state (Running, Unknown, ...)."""

    machine_id: MachineId
    state: RunState
    message: str = ""
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class WaitChanged:
    """A Pending machine's start request waits on the service's budget, or stopped waiting
    (``waiting`` None).

    Transient: the machine's next StateChanged or Finished ends the wait too, so a backend
    need not report None. A backend reports only the latest wait when it gets to run, so a
    request granted at once reports nothing; like output, subscribers past their backlog
    may drop these (the run state holds the current one).
    """

    machine_id: MachineId
    waiting: Waiting | None


@dataclass(frozen=True, slots=True)
class OutputAppended:
    """New bytes of a stream's full output, starting at byte ``offset``."""

    machine_id: MachineId
    stream: Stream
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TailUpdated:
    """The last (at most 4096) bytes of a stream as the machine reports it."""

    machine_id: MachineId
    stream: Stream
    tail: bytes


@dataclass(frozen=True, slots=True)
class Finished:
    """A machine reached a terminal state. Always the last event for that machine."""

    machine_id: MachineId
    state: RunState
    exit_code: int | None = None
    started: datetime | None = None
    ended: datetime | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class RunStarted:
    run_id: str
    machine_count: int
    at: datetime = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class RunFinished:
    run_id: str
    summary: dict[str, int]
    stop_reason: str = ""
    at: datetime = field(default_factory=utc_now)


MachineEvent = StateChanged | WaitChanged | OutputAppended | TailUpdated | Finished
Event = MachineEvent | RunStarted | RunFinished
