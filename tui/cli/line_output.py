"""``-o lines``: every machine's output as ``machine: line`` while the run goes, as pdsh,
clush and pssh ``-P`` print it.

stdout lines go to stdout and stderr lines to stderr, each with the machine's name in
front; a machine's lines come in the order it printed them, and its last line without a
line feed comes when it ends. A machine that did not succeed gets one line on stderr, as
clush's ``clush: node: exited with exit code N``. The text is inert
(:mod:`core.output_lines`); the names are coloured only on a terminal (or with
``FORCE_COLOR``), never with ``NO_COLOR``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TextIO

from core.events import Finished, OutputAppended
from core.model import MachineId, RunState, Stream
from core.output_in_order import OutputInOrder
from core.output_lines import OutputLines
from core.runner import RunSession
from core.terminal_text import inert

_NAME_COLOURS = {Stream.STDOUT: "\x1b[36m", Stream.STDERR: "\x1b[31m"}
_RESET = "\x1b[0m"
_BATCH_LINES = 500


def colours_for(sink: TextIO) -> bool:
    """no-color.org: a non-empty NO_COLOR turns colour off; else a terminal (or FORCE_COLOR,
    as rich reads it) gets it."""
    if os.environ.get("NO_COLOR", ""):
        return False
    return bool(os.environ.get("FORCE_COLOR", "")) or sink.isatty()


class _Printer:
    def __init__(self, session: RunSession) -> None:
        self.names = {mid: inert(mr.machine.name) for mid, mr in session.run.machines.items()}
        self.sinks = {Stream.STDOUT: sys.stdout, Stream.STDERR: sys.stderr}
        self.colour = {stream: colours_for(sink) for stream, sink in self.sinks.items()}
        self.batch: dict[Stream, list[str]] = {Stream.STDOUT: [], Stream.STDERR: []}
        self.lines = OutputLines()
        self.in_order = OutputInOrder(session.output)

    def add(self, machine_id: MachineId, stream: Stream, lines: list[str]) -> None:
        if not lines:
            return
        name = self.names[machine_id]
        prefix = (f"{_NAME_COLOURS[stream]}{name}:{_RESET} " if self.colour[stream]
                  else f"{name}: ")
        self.batch[stream].extend(f"{prefix}{line}\n" for line in lines)

    def output(self, event: OutputAppended) -> None:
        for chunk in self.in_order.chunks(event):
            self.add(event.machine_id, event.stream,
                     self.lines.feed(event.machine_id, event.stream, chunk))

    def finished(self, event: Finished) -> None:
        mid = event.machine_id
        for stream in Stream:
            for chunk in self.in_order.rest(mid, stream):
                self.add(mid, stream, self.lines.feed(mid, stream, chunk))
            self.add(mid, stream, self.lines.end(mid, stream))
        if event.state is not RunState.SUCCEEDED:
            code = "" if event.exit_code is None else f" (exit code {event.exit_code})"
            state = event.state.value
            error = inert(event.error)
            # A skipped machine's reason starts "skipped: ...": its state once is enough.
            said = f"{error}{code}" if error.lower().startswith(state.lower()) else (
                f"{state}{code}{': ' + error if error else ''}")
            self.batch[Stream.STDERR].append(f"fleetrun: {self.names[mid]}: {said}\n")

    def pending(self) -> int:
        return sum(len(lines) for lines in self.batch.values())

    def take(self) -> list[tuple[TextIO, str]]:
        taken = [(self.sinks[stream], "".join(lines))
                 for stream, lines in self.batch.items() if lines]
        for lines in self.batch.values():
            lines.clear()
        return taken


async def follow_lines(session: RunSession) -> None:
    """Execute the run, printing its lines as they come."""
    events = session.subscribe(max_pending=2_000)
    printer = _Printer(session)

    async def pump() -> None:
        async for event in events:
            if isinstance(event, OutputAppended):
                printer.output(event)
            elif isinstance(event, Finished):
                printer.finished(event)
            if events.pending() == 0 or printer.pending() >= _BATCH_LINES:
                # A slow reader must block a thread, never the event loop.
                await asyncio.to_thread(_write, printer.take())
        await asyncio.to_thread(_write, printer.take())

    writer = asyncio.create_task(pump())
    try:
        await session.execute()
    finally:
        await writer


def _write(texts: list[tuple[TextIO, str]]) -> None:
    for sink, text in texts:
        sink.write(text)
        sink.flush()
