"""Machines' output as ``machine: line`` lines, the way pdsh, clush and pssh ``-P`` print.

Each stream of each machine is cut into lines as its bytes arrive; a line is given out once
its line feed has come, and a last line without one when the stream ends (:meth:`end`).
The text is inert (:mod:`core.terminal_text`): a machine's escape sequences are shown,
never obeyed, and a UTF-8 character or ``\\r\\n`` cut between two chunks comes out whole.
"""

from __future__ import annotations

from core.model import MachineId, Stream
from core.terminal_text import InertStream


class _StreamLines:
    __slots__ = ("inert", "partial")

    def __init__(self) -> None:
        self.inert = InertStream()
        self.partial = ""


class OutputLines:
    """Complete lines per machine and stream, inert, without their line feeds."""

    def __init__(self) -> None:
        self._streams: dict[tuple[MachineId, Stream], _StreamLines] = {}

    def feed(self, machine_id: MachineId, stream: Stream, data: bytes) -> list[str]:
        """The lines ``data`` completes (none while a line is still open)."""
        state = self._streams.get((machine_id, stream))
        if state is None:
            state = self._streams[(machine_id, stream)] = _StreamLines()
        text = state.partial + state.inert.feed(data)
        *lines, state.partial = text.split("\n")
        return lines

    def end(self, machine_id: MachineId, stream: Stream) -> list[str]:
        """The stream's last line when it did not end with a line feed (else nothing)."""
        state = self._streams.pop((machine_id, stream), None)
        if state is None:
            return []
        last = state.partial + state.inert.feed(b"", final=True)
        return [last] if last else []
