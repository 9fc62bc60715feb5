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
from core.backends.ssh_output import ClientTimeout, follow_output, outcome
from core.events import Finished, MachineEvent, OutputAppended, StateChanged
from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    RunState,
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
                async for event in follow_output(
                        machine, process, command.timeout,
                        tail_interval=self.settings.tail_interval,
                        kill_grace=self.settings.kill_grace):
                    if mirror is not None and isinstance(event, OutputAppended):
                        mirror.add(event.stream, event.offset, event.data)
                    yield event
            except ClientTimeout:
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

    def _result(
        self,
        machine: Machine,
        process: asyncssh.SSHClientProcess[bytes],
        command: Command,
        key: tuple[MachineId, str],
        started: datetime,
        elapsed: float,
    ) -> Finished:
        state, code, error = outcome(process, command, canceled=key in self._canceled,
                                     elapsed=elapsed)
        return Finished(machine.id, state, code, started, utc_now(), error)

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


if TYPE_CHECKING:
    # Front ends know SSH's host keys only through the protocol: mypy holds SshBackend to it.
    _CHECKS_HOST_KEYS: type[HostKeyScanningBackend] = SshBackend
    _CHECKED_BY_ITS_RUN: type[RunCheckedBackend] = SshBackend
