"""A run read once for the record, an export or a report: its groups, tails and counts.

Protected values never reach here: what the machines printed, their errors and messages
were masked as they arrived (:mod:`core.redaction`). While the run is in memory its values
are known, and every value a record or an export places goes through the same mask once
more, as defence in depth; a run read back from history has no values to mask (the journal
never had them) and needs none.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from core.journal_store import RunRecord, RunStatus
from core.model import MachineId, MachineRun, Run, RunState, Stream, utc_now
from core.output import OutputStore, decode_tail
from core.redaction import SecretMask
from core.runner import RunSession


class RunView:
    """One run, read once, in the shapes every format needs."""

    def __init__(self, run: Run, output: OutputStore, now: datetime, *,
                 journal_record: RunRecord | None = None) -> None:
        """``journal_record``: the journal's row of a run read back from history, whose
        status and end are the journal's (a run another process still follows, or one
        interrupted, has no end though nothing runs here)."""
        self.run = run
        self.output = output
        self.now = now
        self.status: RunStatus = (journal_record.status if journal_record is not None
                                  else "finished" if run.finished else "running")
        self.ended = journal_record.ended if journal_record is not None else run.ended
        self.end = self.ended or now
        self.mask = SecretMask.of(run.commands())
        self.groups = output.groups(run.machines.values())
        self.group_of: dict[MachineId, int] = {
            mid: number for number, group in enumerate(self.groups, start=1)
            for mid in group.machine_ids}

    @classmethod
    def from_journal(cls, record: RunRecord, *, now: datetime | None = None,
                     runs_root: Path | None = None) -> RunView:
        """A run read back from history (its outputs from the files the run left)."""
        session = RunSession.recorded(record, runs_root=runs_root)
        return cls(session.run, session.output, now or utc_now(), journal_record=record)

    def scrub(self, text: str) -> str:
        """``text`` with the run's protected values masked (see the module's docstring)."""
        return self.mask.text(text)

    def scrub_tree(self, value: Any) -> Any:
        """Every string inside a JSON-ready value, scrubbed."""
        if not self.mask:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {key: self.scrub_tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub_tree(item) for item in value]
        return value

    def tail(self, mr: MachineRun, stream: Stream) -> str:
        """A machine's 4 KB tail of ``stream`` as text, as stored (masked as it arrived; the
        record scrubs it with everything else)."""
        return decode_tail(self.output.tail(mr.machine_id, stream))

    def masked(self) -> int:
        """Occurrences of protected values masked on every machine."""
        return sum(mr.masked for mr in self.run.machines.values())

    def elapsed(self, mr: MachineRun) -> float | None:
        seconds = mr.elapsed(self.end)
        return round(seconds, 3) if seconds is not None else None

    def counts(self) -> dict[str, int]:
        """Machines per state, in :class:`RunState` order, states with none left out."""
        summary = self.run.summary()
        return {state.value: summary[state.value] for state in RunState if state.value in summary}

    def commands(self) -> list[dict[str, Any]]:
        """What ran, redacted: one command per OS present."""
        return [c.redacted() for c in self.run.commands()]


def last_line(text: str) -> str:
    """The last line of ``text`` (its final line end ignored), stripped."""
    return text.rstrip("\n").rsplit("\n", 1)[-1].strip()
