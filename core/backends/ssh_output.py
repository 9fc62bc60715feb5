"""One SSH run's output as it arrives, and what its end means.

:func:`follow_output` turns a remote process's two streams into the run's events (every
byte, the 4096-byte tails every ``tail_interval``) and steps in when the host does not end
the script by its timeout; :func:`outcome` reads the end as the Linux handler would.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator

import asyncssh

from core.backends.ssh_bootstrap import BOOTSTRAP_FAILURE
from core.errors import FleetrunError
from core.events import MachineEvent, OutputAppended, TailUpdated
from core.model import TAIL_BYTES, Command, CommandId, Machine, RunState, Stream

READ_SIZE = 1 << 16


class ClientTimeout(FleetrunError):
    """The host did not end the script by its timeout (plus grace): the client steps in."""


class _Clock(enum.Enum):
    """A timer's mark in :func:`follow_output`'s queue."""

    TAIL = "time for a tail report"
    DEADLINE = "the command's timeout plus grace has passed"


async def follow_output(
    machine: Machine, process: asyncssh.SSHClientProcess[bytes], limit: int, *,
    tail_interval: float, kill_grace: float,
) -> AsyncIterator[MachineEvent]:
    """Every byte of both streams, tails every ``tail_interval``, until both end.

    Raises:
        ClientTimeout: ``limit`` plus ``kill_grace`` seconds passed (``limit`` 0: never).

    One queue carries both streams' chunks and the two clocks (the next tail report,
    the client's deadline): each clock is one timer set once and re-armed only when it
    fires, rather than a fresh timeout around every chunk.
    """
    chunks: asyncio.Queue[tuple[Stream, bytes | Exception | _Clock]] = asyncio.Queue()
    offsets = dict.fromkeys(Stream, 0)
    tails = dict.fromkeys(Stream, b"")
    reported: dict[Stream, bytes] = {}

    async def pump(stream: Stream, reader: asyncssh.SSHReader[bytes]) -> None:
        try:
            while data := await reader.read(READ_SIZE):
                chunks.put_nowait((stream, data))
        except (asyncssh.Error, OSError) as exc:  # the connection died (keepalives)
            chunks.put_nowait((stream, exc))
            return
        chunks.put_nowait((stream, b""))

    loop = asyncio.get_running_loop()
    interval = tail_interval
    clocks = [loop.call_later(interval, chunks.put_nowait, (Stream.STDOUT, _Clock.TAIL))]
    if limit > 0:
        clocks.append(loop.call_later(limit + kill_grace, chunks.put_nowait,
                                      (Stream.STDOUT, _Clock.DEADLINE)))
    readers = [asyncio.create_task(pump(Stream.STDOUT, process.stdout)),
               asyncio.create_task(pump(Stream.STDERR, process.stderr))]
    open_streams = 2
    try:
        while open_streams:
            stream, data = await chunks.get()
            if data is _Clock.DEADLINE:
                raise ClientTimeout
            if isinstance(data, Exception):
                raise data
            if data is _Clock.TAIL:
                clocks[0] = loop.call_later(interval, chunks.put_nowait,
                                            (Stream.STDOUT, _Clock.TAIL))
                for name in Stream:
                    if reported.get(name) != tails[name]:
                        reported[name] = tails[name]
                        yield TailUpdated(machine.id, name, tails[name])
                continue
            if not data:
                open_streams -= 1
                continue
            yield OutputAppended(machine.id, stream, offsets[stream], data)
            offsets[stream] += len(data)
            tail = tails[stream]
            tails[stream] = (data[-TAIL_BYTES:] if len(data) >= TAIL_BYTES
                             else (tail + data)[-TAIL_BYTES:])
        for name in Stream:
            yield TailUpdated(machine.id, name, tails[name])
        await process.wait_closed()
    finally:
        for clock in clocks:
            clock.cancel()
        for reader in readers:
            reader.cancel()


def outcome(
    process: asyncssh.SSHClientProcess[bytes], command: Command, *, canceled: bool,
    elapsed: float,
) -> tuple[RunState, int | None, str]:
    """A finished process's state, exit code and error, as the Linux handler reports them
    (a timeout the host enforced is TimedOut, not a kill)."""
    signal, status = process.exit_signal, process.exit_status
    if canceled:
        return RunState.CANCELED, None, "canceled by the user"
    timed_out = command.timeout > 0 and elapsed >= command.timeout - 0.5
    if timed_out and command.command_id is CommandId.POWERSHELL and status != 0:
        # Windows has no exit signal: the watchdog's taskkill leaves exit status 1.
        return RunState.TIMED_OUT, -1, (f"timed out after {command.timeout} s: the host "
                                        "killed the script's process tree")
    if signal is not None:
        name = f"SIG{signal[0]}"
        if timed_out:
            return RunState.TIMED_OUT, -1, (f"timed out after {command.timeout} s: the "
                                            f"host killed the script and its process "
                                            f"group ({name})")
        return RunState.FAILED, -1, f"killed by {name}"
    if status is None or status < 0:
        return RunState.FAILED, None, ("the connection ended before the command reported "
                                       "its exit status")
    if status == 0:
        return RunState.SUCCEEDED, 0, ""
    error = f"exit status {status}"
    if status == BOOTSTRAP_FAILURE:
        error += (" (unless the script exited 203 itself, fleetrun could not set it up on "
                  "the host: see stderr)")
    return RunState.FAILED, status, error
