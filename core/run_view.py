"""A run read once for export: its groups, tails and counts, with secrets blanked out.

While the run is in memory, the values of its protected parameters (and run-as password)
are blanked out of anything the machines said (tails, errors): a script that echoed its
secret must not leak it into a file or a ticket. A run read back from history cannot do
that (the journal never had the values), so what a machine printed is used as stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from core.model import REDACTED, Command, MachineId, MachineRun, Run, RunState, Stream
from core.output import OutputStore, decode_tail


class Scrubber:
    """Blanks a run's secret values out of text the machines produced."""

    def __init__(self, commands: Iterable[Command]) -> None:
        values = {v for c in commands for v in c.secret_values() if v and v != REDACTED}
        # Longest first: a secret that contains another is replaced whole.
        ordered = sorted(values, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern is not None else text

    def tree(self, value: Any) -> Any:
        """Every string inside a JSON-ready value, scrubbed."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {key: self.tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.tree(item) for item in value]
        return value


class RunView:
    """One run, read once, in the shapes every format needs."""

    def __init__(self, run: Run, output: OutputStore, now: datetime) -> None:
        self.run = run
        self.output = output
        self.now = now
        self.end = run.ended or now
        self.scrub = Scrubber(run.commands())
        self.groups = output.groups(run.machines.values())
        self.group_of: dict[MachineId, int] = {
            mid: number for number, group in enumerate(self.groups, start=1)
            for mid in group.machine_ids}

    def tail(self, mr: MachineRun, stream: Stream) -> str:
        """A machine's 4 KB tail of ``stream`` as text, secrets blanked out."""
        return self.scrub(decode_tail(self.output.tail(mr.machine_id, stream)))

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
