"""``fleetrun cleanup``: delete the run commands fleetrun left on a fleet's machines.

Every call goes through the fleet's ARM client, so the listing (one read per machine) and
the deletes spend the same budgets as a run and never outrun them. Two kinds of run command
are kept unless asked otherwise, because deleting a run command stops its script:

- one whose run is still going on the machine (Running, or not yet started);
- one of a run this computer's journal still follows, or can still attach to (an
  interrupted run with machines that had not ended): 'fleetrun attach' needs it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from core.backends.leftovers import LeftoverCleaningBackend, RunCommandFound
from core.errors import FleetrunError
from core.journal_store import RunRecord
from core.model import Machine, RunState


class Outcome(enum.StrEnum):
    DELETED = "deleted"
    WOULD_DELETE = "would delete"
    KEPT = "kept"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class CleanupItem:
    """One run command found, and what became of it."""

    machine: Machine
    found: RunCommandFound
    outcome: Outcome
    reason: str = ""


@dataclass(slots=True)
class CleanupReport:
    """What a cleanup found and did, machine by machine."""

    machines: int = 0
    """Machines looked at (their run commands listed, or tried)."""
    items: list[CleanupItem] = field(default_factory=list)
    unlisted: list[tuple[Machine, str]] = field(default_factory=list)
    """Machines whose run commands could not be listed, with the error."""

    def counts(self) -> dict[str, int]:
        counts = {outcome.value: 0 for outcome in Outcome}
        for item in self.items:
            counts[item.outcome.value] += 1
        return counts


MachineDone = Callable[[Machine, Sequence[CleanupItem]], None]


async def clean_up(
    machines: Sequence[Machine],
    backend_for: Callable[[Machine], object],
    *,
    dry_run: bool = False,
    keep_runs: Mapping[str, str] | None = None,
    include_running: bool = False,
    on_machine: MachineDone | None = None,
    concurrency: int = 64,
) -> CleanupReport:
    """List fleetrun's run commands on ``machines`` and delete the ones left behind.

    Args:
        machines: The machines to look at; those whose backend leaves nothing behind (SSH,
            local) are passed over.
        backend_for: The fleet's backend for a machine.
        dry_run: List only: what would be deleted is reported as such.
        keep_runs: Run ids (lowercase) whose run commands stay, with the reason shown.
        include_running: Delete run commands still running too (stopping their scripts).
        on_machine: Called as each machine is done, with what was found there.
        concurrency: Machines worked on at once (the ARM budget paces the calls anyway).
    """
    report = CleanupReport()
    keep = {run_id.lower(): reason for run_id, reason in (keep_runs or {}).items()}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(machine: Machine, backend: LeftoverCleaningBackend) -> None:
        async with gate:
            try:
                found = await backend.leftovers(machine)
            except FleetrunError as error:
                report.unlisted.append((machine, str(error)))
                found = []
            items = [await _settle(machine, backend, command, dry_run, keep, include_running)
                     for command in found]
        report.items.extend(items)
        if on_machine is not None:
            on_machine(machine, items)

    work = []
    for machine in machines:
        backend = backend_for(machine)
        if isinstance(backend, LeftoverCleaningBackend):
            report.machines += 1
            work.append(one(machine, backend))
    await asyncio.gather(*work)
    return report


def cleanable(machines: Sequence[Machine], backend_for: Callable[[Machine], object]
              ) -> list[Machine]:
    """The machines whose runs can leave something behind (VMs and Arc servers)."""
    return [m for m in machines if isinstance(backend_for(m), LeftoverCleaningBackend)]


async def _settle(machine: Machine, backend: LeftoverCleaningBackend, found: RunCommandFound,
                  dry_run: bool, keep: Mapping[str, str], include_running: bool
                  ) -> CleanupItem:
    reason = keep.get(found.run_id.lower(), "")
    if not reason and not found.finished and not include_running:
        reason = (f"still {found.execution_state}: deleting it would stop its script "
                  "(--include-running deletes it anyway)")
    if reason:
        return CleanupItem(machine, found, Outcome.KEPT, reason)
    if dry_run:
        return CleanupItem(machine, found, Outcome.WOULD_DELETE)
    try:
        await backend.remove_leftover(machine, found.name)
    except FleetrunError as error:
        return CleanupItem(machine, found, Outcome.FAILED, str(error))
    return CleanupItem(machine, found, Outcome.DELETED)


def runs_to_keep(runs: Iterable[RunRecord]) -> dict[str, str]:
    """Runs of the journal whose run commands a cleanup must leave, with the reason."""
    keep: dict[str, str] = {}
    for run in runs:
        if run.status == "running":
            keep[run.run_id] = f"run {run.run_id} is still followed by process {run.pid}"
        elif run.status == "interrupted" and any(
                not RunState(state).terminal for state in run.summary):
            keep[run.run_id] = (f"run {run.run_id} was interrupted and can still be attached: "
                                f"'fleetrun attach {run.run_id}' first")
    return keep


async def remove_ended_runs(run_id: str, machines: Sequence[Machine],
                            backend_for: Callable[[Machine], object]
                            ) -> list[tuple[Machine, str]]:
    """Delete run ``run_id``'s run commands on ``machines``, whose run had ended in the
    journal: what ``fleetrun attach`` does for the machines it does not follow.

    A process killed after the journal held a machine's end but before its DELETE was
    answered (the journal is written first, so attach never loses a result) left that run
    command behind; nothing else would remove it, and a VM holds 25. Already gone counts as
    deleted. Returns the machines whose run command could not be deleted, and why.
    """
    async def one(machine: Machine, backend: LeftoverCleaningBackend
                  ) -> tuple[Machine, str] | None:
        try:
            await backend.remove_run(machine, run_id)
        except FleetrunError as error:
            return machine, str(error)
        return None

    work = [one(m, backend) for m in machines
            if isinstance(backend := backend_for(m), LeftoverCleaningBackend)]
    return [failed for failed in await asyncio.gather(*work) if failed is not None]
