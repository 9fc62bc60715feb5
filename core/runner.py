"""One run, wired: the fan-out engine, its output store and the journal writer.

Front ends (the CLI now, the TUI later) create a :class:`RunSession`, subscribe to its
events if they want them, and await :meth:`RunSession.execute`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core import config
from core.backends.base import Backend, IfMissing
from core.events import MachineEvent
from core.fanout import FanOut, FanoutOptions, Subscription, plan_run
from core.journal_store import Journal, MachineRecord, RunRecord
from core.journal_writer import JournalWriter
from core.model import (
    Command,
    CommandId,
    Health,
    Machine,
    MachineId,
    MachineKind,
    MachineRun,
    OsType,
    Parameter,
    Run,
    RunApi,
    RunState,
    Stream,
)
from core.output import OutputStore
from core.validate import Problem, raise_if_errors, validate_selection

log = logging.getLogger(__name__)


def check_run(assignments: Sequence[tuple[Machine, Command]],
              backend_for: Callable[[Machine], Backend] | None = None) -> list[Problem]:
    """The gate every new run passes (:meth:`RunSession.plan` always calls it).

    A front end may call it earlier too, to refuse bad input before it pays for anything
    else (the CLI checks health, which costs API calls on Azure, only once this passed).
    With ``backend_for``, a script over the inline limit passes for machines whose backend
    uploads it (``uploads_scripts``); without, it never does.

    Returns:
        The warnings: the run may go on, but the user should see them.

    Raises:
        ValidationError: at least one error; it carries every problem found.
    """
    problems = validate_selection(
        assignments, uploads_scripts=None if backend_for is None else uploads_for(backend_for))
    raise_if_errors(problems)
    return problems


def uploads_scripts(backend: Backend) -> bool:
    """Whether ``backend`` passes a script too big to send inline by URI."""
    return bool(getattr(backend, "uploads_scripts", False))


def uploads_for(backend_for: Callable[[Machine], Backend]) -> Callable[[Machine], bool]:
    """Per machine: whether its backend passes a script too big to send inline by URI."""
    def uploads(machine: Machine) -> bool:
        try:
            return uploads_scripts(backend_for(machine))
        except LookupError:  # no backend for its kind: the run reports that machine
            return False

    return uploads


class RunSession:
    """A run in progress, persisted as it goes."""

    def __init__(
        self,
        run: Run,
        backend_for: Callable[[Machine], Backend],
        *,
        options: FanoutOptions | None = None,
        journal: Journal | None = None,
        runs_root: Path | None = None,
        reattach: bool = False,
        if_missing: Mapping[MachineId, IfMissing] | None = None,
    ) -> None:
        self.run = run
        self.backend_for = backend_for
        root = runs_root if runs_root is not None else config.runs_dir()
        self.output = OutputStore(root / run.run_id)
        self.fanout = FanOut(run, backend_for, self.output, options, reattach=reattach,
                             if_missing=if_missing)
        self.journal = journal
        self.warnings: list[Problem] = []
        """What the gate (:func:`check_run`) warned about when the run was planned."""
        self._journal_events: Subscription | None = None
        if journal is not None:
            # The journal keeps every state event; it may drop output events, whose byte
            # counts it reads from the live run state anyway.
            self._journal_events = self.fanout.subscribe(max_pending=5_000)

    @classmethod
    def plan(
        cls,
        assignments: Sequence[tuple[Machine, Command]],
        backend_for: Callable[[Machine], Backend],
        *,
        fleet: str = "",
        target: str = "",
        parent_run_id: str = "",
        source_group: str = "",
        options: FanoutOptions | None = None,
        journal: Journal | None = None,
        runs_root: Path | None = None,
    ) -> RunSession:
        """A new run of ``assignments``, once they pass the gate (:func:`check_run`).

        Its warnings are kept in :attr:`warnings` for the front end to show.

        Raises:
            ValidationError: the assignments must not be sent; nothing was started or
                written to the journal.
        """
        warnings = check_run(assignments, backend_for)
        run = plan_run(assignments, fleet=fleet, target=target, parent_run_id=parent_run_id,
                       source_group=source_group)
        session = cls(run, backend_for, options=options, journal=journal, runs_root=runs_root)
        session.warnings = warnings
        return session

    @classmethod
    def resume(
        cls,
        record: RunRecord,
        machines: Sequence[Machine],
        backend_for: Callable[[Machine], Backend],
        *,
        journal: Journal | None = None,
        runs_root: Path | None = None,
        secrets: Mapping[str, str] | None = None,
        submit_unsent: bool = True,
    ) -> RunSession:
        """Follow again the unfinished ``machines`` of a recorded run (``fleetrun attach``).

        Their commands are rebuilt from the journal, where secrets were never stored. What
        the machines print still has to be masked: ``secrets`` gives the values again, by
        protected parameter name (and :data:`RUN_AS_PASSWORD` for the run-as password).

        A machine the service has no run for, and that the journal never saw start, was
        never sent (the process died before its request): with ``submit_unsent`` it is sent
        now, else it ends NotStarted. Nothing the journal saw start is sent again.
        """
        wanted = {m.id: m for m in machines}
        by_id = {mr.machine_id: mr for mr in record.machines}
        commands: dict[int, Command] = {}
        machine_runs = {}
        if_missing: dict[MachineId, IfMissing] = {}
        for machine_id, machine in wanted.items():
            kept = by_id[machine_id]
            if_missing[machine_id] = _if_missing(kept, submit_unsent)
            command = commands.get(kept.command_index)
            if command is None:
                command = commands[kept.command_index] = command_from_record(
                    record.command_for(kept), secrets)
            machine_runs[machine_id] = MachineRun(
                machine=machine, command=command, state=RunState.PENDING, started=kept.started)
        run = Run(
            run_id=record.run_id, machines=machine_runs, created=record.created,
            parent_run_id=record.parent_run_id, source_group=record.source_group,
            fleet=record.fleet, target=record.target,
        )
        return cls(run, backend_for, journal=journal, runs_root=runs_root, reattach=True,
                   if_missing=if_missing)

    @classmethod
    def recorded(cls, record: RunRecord, *, runs_root: Path | None = None) -> RunSession:
        """A finished (or interrupted) run from the journal, to look at: nothing can run.

        Machines that never reached an end keep the state the journal has (Unknown for an
        interrupted run).
        """
        commands: dict[int, Command] = {}
        machine_runs: dict[str, MachineRun] = {}
        for kept in record.machines:
            command = commands.get(kept.command_index)
            if command is None:
                command = commands[kept.command_index] = command_from_record(
                    record.command_for(kept))
            machine = Machine(
                id=kept.machine_id, name=kept.name, kind=MachineKind(kept.kind),
                os=OsType(kept.os), location=kept.location, subscription=kept.subscription,
                tags=dict(kept.tags),
            )
            machine_runs[kept.machine_id] = MachineRun(
                machine=machine, command=command, state=kept.state, exit_code=kept.exit_code,
                started=kept.started, ended=kept.ended, error=kept.error, masked=kept.masked,
            )
        run = Run(
            run_id=record.run_id, machines=machine_runs, created=record.created,
            ended=record.ended or record.created, parent_run_id=record.parent_run_id,
            source_group=record.source_group,
            fleet=record.fleet, target=record.target, stop_reason=record.stop_reason,
        )
        session = cls(run, lambda _machine: _NOTHING_RUNS, runs_root=runs_root)
        for machine_id, mr in machine_runs.items():
            session.output.load_recorded(machine_id)
            mr.stdout_bytes = session.output.stream(machine_id, Stream.STDOUT).size
            mr.stderr_bytes = session.output.stream(machine_id, Stream.STDERR).size
        return session

    def subscribe(self, max_pending: int = 10_000) -> Subscription:
        return self.fanout.subscribe(max_pending)

    async def execute(self) -> Run:
        """Run to the end; the journal holds the final state when this returns."""
        writer: asyncio.Task[None] | None = None
        if self.journal is not None and self._journal_events is not None:
            consumer = JournalWriter(self.journal, self.run)
            self.fanout.before_cleanup = consumer.persist
            writer = asyncio.create_task(consumer.consume(self._journal_events))
        log.info("run %s: %d machines", self.run.run_id, len(self.run.machines))
        try:
            await self.fanout.execute()
        finally:
            if writer is not None:
                # Even when interrupted, let the journal record how the run ended.
                await asyncio.shield(writer)
            log.info("run %s finished: %s", self.run.run_id, self.run.summary())
        return self.run


def _if_missing(kept: MachineRecord, submit_unsent: bool) -> IfMissing:
    """What attach does if the service has no run for this machine (see IfMissing)."""
    if kept.started is not None or kept.stdout_bytes or kept.stderr_bytes:
        return IfMissing.RAN
    return IfMissing.SUBMIT if submit_unsent else IfMissing.REPORT


RUN_AS_PASSWORD = ""
"""The key of the run-as password in the ``secrets`` of :meth:`RunSession.resume` (no
parameter has an empty name and is protected)."""


def secret_names(recorded: dict[str, Any]) -> list[str]:
    """The protected parameters of a recorded command, and :data:`RUN_AS_PASSWORD` if it
    had a run-as password: the values the journal never had."""
    names = [str(p["name"]) for p in recorded.get("parameters", []) if p.get("protected")]
    if recorded.get("run_as_password"):
        names.append(RUN_AS_PASSWORD)
    return names


def command_from_record(recorded: dict[str, Any],
                        secrets: Mapping[str, str] | None = None) -> Command:
    """A command as the journal kept it: protected values replaced (never stored), unless
    ``secrets`` gives them again (see :meth:`RunSession.resume`)."""
    given = secrets or {}

    def value(p: dict[str, Any]) -> str:
        return given.get(p["name"], p["value"]) if p.get("protected") else str(p["value"])

    return Command(
        command_id=CommandId(recorded["command_id"]),
        script=recorded["script"],
        parameters=tuple(
            Parameter(p["name"], value(p), bool(p.get("protected"))) for p in
            recorded.get("parameters", [])
        ),
        timeout=int(recorded.get("timeout", 0)),
        run_as_user=recorded.get("run_as_user", ""),
        run_as_password=given.get(RUN_AS_PASSWORD, "") if recorded.get("run_as_password")
        else "",
        async_execution=bool(recorded.get("async_execution", True)),
        script_path=recorded.get("script_path", ""),
        api=RunApi(recorded.get("api", RunApi.AUTO.value)),
        builtin=recorded.get("builtin", ""),
        saved_command=recorded.get("saved_command", ""),
        saved_hash=recorded.get("saved_hash", ""),
    )


class _RecordedOnly:
    """Stands in for a backend in a session opened from history: nothing may run there."""

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        raise RuntimeError("a recorded run checks no health")

    def run(self, machine: Machine, command: Command, *, run_id: str
            ) -> AsyncIterator[MachineEvent]:
        raise RuntimeError(f"run {run_id} is a record: it cannot run again; rerun it")

    async def cancel(self, machine: Machine, run_id: str) -> None:
        return None


_NOTHING_RUNS = _RecordedOnly()
