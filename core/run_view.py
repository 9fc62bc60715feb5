"""A run read once for export: its groups, tails and counts.

Protected values never reach here: what the machines printed, their errors and messages
were masked as they arrived (:mod:`core.redaction`). While the run is in memory its values
are known, and every value an export places goes through the same mask once more, as
defence in depth; a run read back from history has no values to mask (the journal never
had them) and needs none.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core.model import MachineId, MachineRun, Run, RunState, Stream
from core.output import OutputStore, decode_tail
from core.redaction import SecretMask


class RunView:
    """One run, read once, in the shapes every format needs."""

    def __init__(self, run: Run, output: OutputStore, now: datetime) -> None:
        self.run = run
        self.output = output
        self.now = now
        self.end = run.ended or now
        self.mask = SecretMask.of(run.commands())
        self.groups = output.groups(run.machines.values())
        self.group_of: dict[MachineId, int] = {
            mid: number for number, group in enumerate(self.groups, start=1)
            for mid in group.machine_ids}

    def scrub(self, text: str) -> str:
        """``text`` with the run's protected values masked (see the module's docstring)."""
        return self.mask.text(text)

    def scrub_tree(self, value: Any) -> Any:
        """Every string inside a JSON-ready value, scrubbed."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {key: self.scrub_tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.scrub_tree(item) for item in value]
        return value

    def tail(self, mr: MachineRun, stream: Stream) -> str:
        """A machine's 4 KB tail of ``stream`` as text (as stored: masked)."""
        return self.scrub(decode_tail(self.output.tail(mr.machine_id, stream)))

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
