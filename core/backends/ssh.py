"""Plain hosts over SSH (asyncssh), with the Linux managed run-command handler's semantics.

One connection per host, opened on first use (a health check or a run) and reused for the
rest of the fleet's life (:mod:`core.backends.ssh_connections`: the ssh config, bastions,
host keys as ssh checks them). The script and
every parameter travel over stdin (:mod:`core.backends.ssh_bootstrap`); the host runs the
script as the Linux handler would, and kills its whole process group when it ends, times
out or is cancelled. ``--run-as`` (or an inventory's become) wraps that command line in sudo
or su (:mod:`core.backends.ssh_become`); the script still travels on stdin.

``RunPowerShellScript`` goes to ``powershell.exe`` (or ``pwsh``) the same way, through
:mod:`core.backends.ssh_powershell`. Output is treated as on the Azure path: every byte of
both streams as it arrives, and the 4096-byte tails.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from core.backends import ssh_powershell as powershell
from core.backends.asyncssh_logging import skip_unheard_logging
from core.backends.base import HostKeyScanningBackend, RunCheckedBackend
from core.backends.host_keys import HostKeyProblem
from core.backends.ssh_become import Become, BecomeError, become_for, escalate
from core.backends.ssh_bootstrap import (
    BOOTSTRAP_FAILURE,
    FrameError,
    frame,
    kill_command_line,
    run_command_line,
)
from core.backends.ssh_connections import (
    SshConnections,
    SshError,
    SshSettings,
)
from core.backends.ssh_hostkeys import (
    HostKeyError,
    HostKeyPolicy,
)
from core.backends.ssh_jump import Bastions
from core.errors import FleetrunError
from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.model import (
    TAIL_BYTES,
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    RunState,
    Stream,
    utc_now,
)
from core.redaction import SecretMask

if TYPE_CHECKING:
    # Only a fleet that copies output to blobs loads their client (and httpx): see _run.
    from core.azure.blob import AppendBlobClient
    from core.azure.session import OutputContainer
    from core.backends.blob_mirror import BlobMirror
    from core.host_key_scan import HostScan

__all__ = ["SshBackend", "SshError", "SshSettings"]
"""SshSettings and SshError live with the connections; importers find them here too."""

log = logging.getLogger(__name__)
skip_unheard_logging()

PROBE = "exec bash --noprofile --norc -c 'echo fleetrun-ok'"
READ_SIZE = 1 << 16


class SshBackend:
    """Runs commands on SSH hosts (the HostKeyScanningBackend protocol: known_hosts)."""

    def __init__(
        self,
        settings: SshSettings | None = None,
        *,
        blobs: AppendBlobClient | None = None,
        output: OutputContainer | None = None,
    ) -> None:
        self.settings = settings or SshSettings()
        self.connections = SshConnections(self.settings)
        """Each host's connection, its bastions and its host keys."""
        self._blobs = blobs
        self._output = output
        """Where to copy each run's output as append blobs, as the Azure agents do."""
        self._runs: dict[tuple[MachineId, str], str] = {}
        """The kill command line of each live run, to stop it from another channel."""
        self._canceled: set[tuple[MachineId, str]] = set()
        self._processes: dict[tuple[MachineId, str], asyncssh.SSHClientProcess[bytes]] = {}
        """The process of each live become run, stopped through its stdin."""

    # -- connections and host keys (SshConnections's) ------------------------------------

    @property
    def host_keys(self) -> HostKeyPolicy:
        return self.connections.host_keys

    @property
    def bastions(self) -> Bastions:
        return self.connections.bastions

    async def connection(self, machine: Machine) -> asyncssh.SSHClientConnection:
        """The host's connection, opened if it is not open yet (see SshConnections)."""
        return await self.connections.connection(machine)

    async def scan_host_keys(self, machine: Machine) -> HostScan:
        return await self.connections.scan_host_keys(machine)

    def pending_host_keys(self) -> list[HostKeyProblem]:
        return self.connections.pending_host_keys()

    def host_key_warnings(self) -> list[str]:
        return self.connections.host_key_warnings()

    def host_key_problems(self) -> dict[MachineId, HostKeyProblem]:
        return self.connections.host_key_problems()

    @property
    def known_hosts_path(self) -> Path:
        return self.connections.known_hosts_path

    def trust_host_keys(self, problems: list[HostKeyProblem]) -> None:
        self.connections.trust_host_keys(problems)

    async def trust_scanned_keys(self, machine: Machine, problems: list[HostKeyProblem]
                                 ) -> None:
        await self.connections.trust_scanned_keys(machine, problems)

    async def aclose(self) -> None:
        """Close every connection (the fleet is done), the bastions' last."""
        await self.connections.aclose()

    # -- health ---------------------------------------------------------------------------

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        """Each host connected, logged in, and running bash (a probe command): what a
        person reads in a machine list, where a host without bash shows before any run."""
        results = await asyncio.gather(*(self._health(m, probe=True) for m in machines))
        return {m.id: h for m, h in zip(machines, results, strict=True)}

    async def check_reachable(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        """Each host connected and logged in, no command: the check before a run, whose
        connections the run then uses; a host that cannot run the script fails in the run,
        with the bootstrap's reason."""
        results = await asyncio.gather(*(self._health(m, probe=False) for m in machines))
        return {m.id: h for m, h in zip(machines, results, strict=True)}

    async def _health(self, machine: Machine, *, probe: bool) -> Health:
        began = time.monotonic()
        try:
            connection = await self.connection(machine)
            if probe:
                answer = connection.run(PROBE, stdin=asyncssh.DEVNULL, check=False)
                result = await asyncio.wait_for(answer, self.connections.reply_timeout)
        except HostKeyError as exc:
            return Health(HealthStatus.NOT_READY, str(exc), checked_at=utc_now())
        except SshError as exc:
            text = str(exc)
            refused = "authentication failed" in text or "host key" in text
            status = HealthStatus.NOT_READY if refused else HealthStatus.UNREACHABLE
            return Health(status, text.split(": ", 1)[-1], checked_at=utc_now())
        except TimeoutError:
            return Health(HealthStatus.NOT_READY, "logged in, but the probe (bash) did not "
                          f"answer within {self.connections.reply_timeout:g} s",
                          checked_at=utc_now())
        except (asyncssh.Error, OSError) as exc:
            return Health(HealthStatus.UNREACHABLE, f"connection lost while checking: {exc}",
                          checked_at=utc_now())
        version = str(connection.get_extra_info("server_version") or "") or None
        latency = (time.monotonic() - began) * 1000
        if not probe:
            return Health(HealthStatus.READY, f"logged in, {latency:.0f} ms", version,
                          utc_now())
        if result.exit_status != 0 or "fleetrun-ok" not in str(result.stdout):
            why = str(result.stderr).strip().splitlines()[-1:] or [f"exit {result.exit_status}"]
            return Health(HealthStatus.NOT_READY, f"bash does not run: {why[0]}", version,
                          utc_now())
        return Health(HealthStatus.READY, f"bash, {latency:.0f} ms", version, utc_now())

    # -- run ------------------------------------------------------------------------------

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        token = f"{run_id}-{secrets.token_hex(4)}"
        shell = self.settings.powershell
        try:
            if command.command_id is CommandId.SHELL:
                launch = _Launch(run_command_line(token, command.timeout), frame(command),
                                 kill_command_line(token), holds_stdin=True)
            else:
                launch = _Launch(powershell.run_command_line(shell),
                                 powershell.payload(command, token),
                                 powershell.kill_command_line(token, shell))
        except FrameError as exc:
            yield Finished(machine.id, RunState.FAILED, error=str(exc))
            return
        try:
            become = become_for(machine, command, self.settings.become_method)
        except BecomeError as exc:
            yield Finished(machine.id, RunState.FAILED, error=str(exc))
            return
        if become is not None:
            if command.command_id is not CommandId.SHELL:
                yield Finished(machine.id, RunState.FAILED, error="run-as over SSH runs shell "
                               "scripts only (sudo/su); log in as that user for PowerShell")
                return
            # The kill line would run as the login user, who cannot touch the become user's
            # processes: a become run is stopped through its own stdin (see _kill).
            launch = replace(launch, command_line=become.wrap(launch.command_line), kill="",
                             become=become)
        try:
            connection = await self.connection(machine)
        except (HostKeyError, SshError) as exc:
            yield Finished(machine.id, RunState.FAILED, error=str(exc))
            return
        key = (machine.id, run_id)
        self._runs[key] = launch.kill
        try:
            # aclosing: when the consumer stops at Finished, the inner generator's clean-up
            # runs now, not at garbage collection (after the connection may be gone).
            async with contextlib.aclosing(
                self._run(machine, connection, command, launch, key)
            ) as events:
                async for event in events:
                    yield event
        finally:
            self._runs.pop(key, None)
            self._processes.pop(key, None)
            self._canceled.discard(key)

    async def _run(
        self,
        machine: Machine,
        connection: asyncssh.SSHClientConnection,
        command: Command,
        launch: _Launch,
        key: tuple[MachineId, str],
    ) -> AsyncGenerator[MachineEvent, None]:
        try:
            process = await connection.create_process(launch.command_line, encoding=None)
        except (asyncssh.Error, OSError) as exc:
            yield Finished(machine.id, RunState.FAILED, error=f"cannot start the command: {exc}")
            return
        if launch.become is not None:
            self._processes[key] = process
            try:
                await escalate(process, launch.become, self.connections.reply_timeout)
            except BecomeError as exc:
                # No second try: a wrong password must not count towards a lockout.
                process.close()
                yield Finished(machine.id, RunState.FAILED, error=str(exc))
                return
            except (asyncssh.Error, OSError) as exc:
                process.close()
                yield Finished(machine.id, RunState.FAILED,
                               error=f"connection lost while switching user: {exc}")
                return
        started = utc_now()
        began = time.monotonic()
        finished = False
        mirror: BlobMirror | None = None
        if self._blobs is not None and self._output is not None:
            # Imported here: the blob client (httpx) is for a fleet that copies output.
            from core.backends.blob_mirror import BlobMirror

            mirror = BlobMirror(self._blobs, self._output.targets(key[1], machine), machine.name,
                                mask=SecretMask.of([command]))
            await mirror.start()
        try:
            process.stdin.write(launch.payload)
            if not launch.holds_stdin:
                process.stdin.write_eof()
            yield StateChanged(machine.id, RunState.RUNNING, "running", at=started)
            try:
                async for event in self._follow(machine, process, command.timeout):
                    if mirror is not None and isinstance(event, OutputAppended):
                        mirror.add(event.stream, event.offset, event.data)
                    yield event
            except _ClientTimeout:
                await asyncio.shield(self._kill(machine, launch.kill, key))
                finished = True
                yield Finished(machine.id, RunState.TIMED_OUT, -1, started, utc_now(),
                               f"timed out after {command.timeout} s: the host did not stop "
                               "it, so fleetrun killed its process group")
                return
            except (asyncssh.Error, OSError) as exc:
                finished = True
                yield Finished(machine.id, RunState.FAILED, None, started, utc_now(),
                               f"connection lost mid-run ({exc}); the script may still be "
                               "running on the host until its timeout")
                return
            elapsed = time.monotonic() - began
            if mirror is not None:
                await mirror.close()
                mirror = None
            result = self._result(machine, process, command, key, started, elapsed)
            finished = True  # before the yield: the consumer may stop right after it
            yield result
        finally:
            if mirror is not None:
                await asyncio.shield(mirror.close())
            if not finished:
                # Cancelled, timed out on our side, or a failure half-way: the host must
                # not keep running it.
                await asyncio.shield(self._kill(machine, launch.kill, key))
            process.close()

    async def _follow(
        self, machine: Machine, process: asyncssh.SSHClientProcess[bytes], limit: int
    ) -> AsyncIterator[MachineEvent]:
        """Every byte of both streams, tails every ``tail_interval``, until both end.

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
        interval = self.settings.tail_interval
        clocks = [loop.call_later(interval, chunks.put_nowait, (Stream.STDOUT, _Clock.TAIL))]
        if limit > 0:
            clocks.append(loop.call_later(limit + self.settings.kill_grace, chunks.put_nowait,
                                          (Stream.STDOUT, _Clock.DEADLINE)))
        readers = [asyncio.create_task(pump(Stream.STDOUT, process.stdout)),
                   asyncio.create_task(pump(Stream.STDERR, process.stderr))]
        open_streams = 2
        try:
            while open_streams:
                stream, data = await chunks.get()
                if data is _Clock.DEADLINE:
                    raise _ClientTimeout
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

    def _result(
        self,
        machine: Machine,
        process: asyncssh.SSHClientProcess[bytes],
        command: Command,
        key: tuple[MachineId, str],
        started: datetime,
        elapsed: float,
    ) -> Finished:
        state, code, error = self._outcome(process, command, key, elapsed)
        return Finished(machine.id, state, code, started, utc_now(), error)

    def _outcome(
        self,
        process: asyncssh.SSHClientProcess[bytes],
        command: Command,
        key: tuple[MachineId, str],
        elapsed: float,
    ) -> tuple[RunState, int | None, str]:
        signal, status = process.exit_signal, process.exit_status
        if key in self._canceled:
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

    # -- cancel ---------------------------------------------------------------------------

    async def cancel(self, machine: Machine, run_id: str) -> None:
        """Kill the run's process group on the host (a run not going is left alone)."""
        key = (machine.id, run_id)
        kill = self._runs.get(key)
        if kill is None:
            return
        self._canceled.add(key)
        await self._kill(machine, kill, key)

    async def _kill(self, machine: Machine, kill: str, key: tuple[MachineId, str]) -> None:
        """Run ``kill`` (a run's kill command line) on the host, on its own channel.

        A become run has none: a byte on its stdin, then its end, tell the run's reaper
        (running as the become user) to kill the script's group and what carries its cookie.
        """
        process = self._processes.get(key)
        if not kill:
            if process is not None:
                with contextlib.suppress(asyncssh.Error, OSError):
                    process.stdin.write(b"x")
                    process.stdin.write_eof()
            return
        try:
            connection = await self.connection(machine)
            stop = connection.run(kill, stdin=asyncssh.DEVNULL, check=False)
            await asyncio.wait_for(stop, self.connections.reply_timeout)
        except (HostKeyError, SshError, asyncssh.Error, OSError, TimeoutError) as exc:
            log.warning("%s: could not stop a run: %r", machine.name, exc)


@dataclass(frozen=True, slots=True)
class _Launch:
    """What starts one run on a host: its command line, its stdin, and how to kill it."""

    command_line: str
    payload: bytes = field(repr=False)
    kill: str
    holds_stdin: bool = False
    """Keep stdin open until the run ends: the host's reaper reads its end as "stop"."""
    become: Become | None = None
    """sudo/su to answer before the payload goes out (the command line is already wrapped)."""


class _Clock(enum.Enum):
    """A timer's mark in :meth:`SshBackend._follow`'s queue."""

    TAIL = "time for a tail report"
    DEADLINE = "the command's timeout plus grace has passed"


class _ClientTimeout(FleetrunError):
    """The host did not end the script by its timeout (plus grace): the client steps in."""


if TYPE_CHECKING:
    # Front ends know SSH's host keys only through the protocol: mypy holds SshBackend to it.
    _CHECKS_HOST_KEYS: type[HostKeyScanningBackend] = SshBackend
    _CHECKED_BY_ITS_RUN: type[RunCheckedBackend] = SshBackend
