"""Plain hosts over SSH (asyncssh), with the Linux managed run-command handler's semantics.

One connection per host, opened on first use (a health check or a run) and reused for the
rest of the fleet's life; ``~/.ssh/config`` and ssh-agent are honoured by asyncssh. Host
keys are checked against known_hosts (:mod:`core.backends.ssh_hostkeys`). The script and
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
import os
import secrets
import socket
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from core.backends import ssh_powershell as powershell
from core.backends.asyncssh_logging import skip_unheard_logging
from core.backends.base import HostKeyScanningBackend, RunCheckedBackend
from core.backends.host_key_names import match_name
from core.backends.host_keys import HostKeyProblem
from core.backends.known_hosts_files import KnownHostsFiles, KnownHostsSet, UntrustedFileError
from core.backends.ssh_become import Become, BecomeError, become_for, escalate
from core.backends.ssh_bootstrap import (
    BOOTSTRAP_FAILURE,
    FrameError,
    frame,
    kill_command_line,
    run_command_line,
)
from core.backends.ssh_config_files import ConfigFiles
from core.backends.ssh_host_options import DEFAULT_GLOBAL_KNOWN_HOSTS, DEFAULT_USER_KNOWN_HOSTS
from core.backends.ssh_hostkeys import (
    CheckingClient,
    HostKeyError,
    HostKeyPolicy,
    host_key_algorithms,
)
from core.backends.ssh_jump import Bastions, HostConfig, JumpError, host_config
from core.backends.ssh_key_scan import NO_TRUSTED_KEYS, KeyCollector, PresentedKey, scan_host
from core.backends.ssh_proxy_command import ProxyCommandTunnel
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
    SshEndpoint,
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

log = logging.getLogger(__name__)
skip_unheard_logging()

PROBE = "exec bash --noprofile --norc -c 'echo fleetrun-ok'"
READ_SIZE = 1 << 16
DEFAULT_CONNECT_TIMEOUT = 15.0
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com",
                     "chacha20-poly1305@openssh.com", "aes256-ctr", "aes192-ctr", "aes128-ctr")


@dataclass(frozen=True, slots=True)
class SshSettings:
    """How the SSH backend connects.

    Attributes:
        known_hosts: The one user known_hosts file for every host, as ``ssh -o
            UserKnownHostsFile`` (None: each host's UserKnownHostsFile, by default
            ``~/.ssh/known_hosts`` and ``known_hosts2``).
        global_known_hosts: The global known_hosts files for every host (None: each
            host's GlobalKnownHostsFile, by default ``/etc/ssh/ssh_known_hosts{,2}``).
        accept_new_host_keys: Trust and record keys of hosts known_hosts does not know.
        config: SSH client config files; asyncssh's default (``~/.ssh/config``) when None.
        connect_timeout: Seconds for TCP connect plus the SSH handshake and login, for
            every host (``--connect-timeout``); None: each host's ``ConnectTimeout`` in the
            ssh config, else 15 s.
        keepalive_interval: Seconds between keepalives on an idle connection (a host's
            ServerAliveInterval wins).
        keepalive_count_max: Unanswered keepalives after which the host is taken for dead
            (a host's ServerAliveCountMax wins).
        tail_interval: Seconds between tail reports of a running script.
        powershell: The PowerShell that runs RunPowerShellScript (``pwsh`` for 7).
        max_handshakes: Connections being set up at once; more wait their turn (a
            5,000-host fleet must not open 5,000 sockets in one instant).
        kill_grace: Seconds past a command's timeout before the client kills it itself
            (the host's own reaper should have done it on time).
    """

    known_hosts: Path | None = None
    global_known_hosts: tuple[Path, ...] | None = None
    accept_new_host_keys: bool = False
    config: tuple[Path, ...] | None = None
    connect_timeout: float | None = None
    keepalive_interval: float = 3.0
    keepalive_count_max: int = 3
    tail_interval: float = 0.5
    kill_grace: float = 3.0
    powershell: str = "powershell.exe"
    max_handshakes: int = 128
    become_method: str = ""
    """``--become-method``: sudo or su for every host; "" leaves it to the inventory."""


class SshError(FleetrunError):
    """A host could not be reached or logged into; the message says why, for a person."""


@dataclass(slots=True)
class _Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connection: asyncssh.SSHClientConnection | None = None


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
        self._configs = ConfigFiles(self.settings.config)
        self._handshakes = asyncio.Semaphore(self.settings.max_handshakes)
        self._blobs = blobs
        self._output = output
        """Where to copy each run's output as append blobs, as the Azure agents do."""
        self._known_hosts_files = KnownHostsFiles()
        self.host_keys = HostKeyPolicy(
            self._known_hosts_set(tuple(Path(p) for p in DEFAULT_USER_KNOWN_HOSTS),
                                  tuple(Path(p) for p in DEFAULT_GLOBAL_KNOWN_HOSTS)),
            accept_new=self.settings.accept_new_host_keys)
        self._hosts: dict[MachineId, _Host] = {}
        self.bastions = Bastions(self._host_config, self._open_bastion)
        """ProxyJump hosts, one connection each for all the machines behind them."""
        self._host_configs: dict[tuple[str, str, int | None], HostConfig] = {}
        self._algorithms: weakref.WeakKeyDictionary[
            asyncssh.SSHKnownHosts, dict[tuple[str, int], list[str] | None]
        ] = weakref.WeakKeyDictionary()
        """Host key algorithms to ask each host for, per parse of its known_hosts files
        (a file that changes is parsed again, and the answers go with the old parse)."""
        self._key_problems: dict[MachineId, HostKeyProblem] = {}
        """Why each machine's last connection attempt was refused for its host key."""
        self._runs: dict[tuple[MachineId, str], str] = {}
        """The kill command line of each live run, to stop it from another channel."""
        self._canceled: set[tuple[MachineId, str]] = set()
        self._processes: dict[tuple[MachineId, str], asyncssh.SSHClientProcess[bytes]] = {}
        """The process of each live become run, stopped through its stdin."""

    # -- connections ----------------------------------------------------------------------

    async def connection(self, machine: Machine) -> asyncssh.SSHClientConnection:
        """The host's connection, opened if it is not open yet.

        Raises:
            HostKeyError: known_hosts does not vouch for the host's key.
            SshError: The host cannot be reached or refuses the login.
        """
        host = self._hosts.setdefault(machine.id, _Host())
        async with host.lock:
            if host.connection is not None and not host.connection.is_closed():
                return host.connection
            async with self._handshakes:
                try:
                    host.connection = await self._connect(machine)
                except HostKeyError as exc:
                    self._key_problems[machine.id] = exc.problem
                    raise
                except BaseException:
                    # Unreachable now (or cancelled): its key is no longer known to be wrong.
                    self._key_problems.pop(machine.id, None)
                    raise
            self._key_problems.pop(machine.id, None)
            return host.connection

    async def _connect(self, machine: Machine) -> asyncssh.SSHClientConnection:
        endpoint, where, config, tunnel = await self._route(machine)
        client = self._checking_client(config)
        options = self._options(config, client, tunnel, where, endpoint.identity_file)
        return await self._login(endpoint.host, options, client, where, config)

    async def _route(self, machine: Machine) -> tuple[
            SshEndpoint, str, HostConfig, asyncssh.SSHClientConnection | None]:
        """The machine's endpoint, its name for messages, its ssh config and its bastion."""
        endpoint = machine.ssh
        if endpoint is None:
            raise SshError(f"{machine.name}: no SSH address")
        where = f"{machine.name} ({endpoint.host}{f':{endpoint.port}' if endpoint.port else ''})"
        try:
            config = await self._host_config(endpoint.host, endpoint.user, endpoint.port)
            tunnel = (await self.bastions.through(config.jump, endpoint.host)
                      if config.jump else None)
        except (JumpError, SshError) as exc:
            # A bastion's failure, named, on each machine behind it.
            raise SshError(f"{where}: {exc}") from None
        return endpoint, where, config, tunnel

    async def scan_host_keys(self, machine: Machine) -> HostScan:
        """The keys the machine's host presents, judged against its known_hosts files; no
        login (:mod:`core.backends.ssh_key_scan`). Nothing is written anywhere."""
        return await scan_host(self._presented_key, machine)

    async def _presented_key(self, machine: Machine, algorithms: Sequence[str]) -> PresentedKey:
        endpoint, where, config, tunnel = await self._route(machine)
        checking = self._checking_client(config)
        collector = KeyCollector(self.host_keys, checking.files, checking.mode, checking.name)
        options = self._options(config, collector, tunnel, where, endpoint.identity_file)
        options.update(known_hosts=NO_TRUSTED_KEYS, server_host_key_algs=list(algorithms))
        async with self._handshakes:
            try:
                connection = await self._login(endpoint.host, options, collector, where, config)
            except SshError:
                if collector.presented is None:
                    raise
                return collector.presented
        connection.close()  # not reached: the collector refuses every key
        raise SshError(f"{where}: presented no host key to check")

    async def _open_bastion(self, config: HostConfig,
                            via: asyncssh.SSHClientConnection | None
                            ) -> asyncssh.SSHClientConnection:
        """A jump host's connection: its key checked as any host's, its own config applied."""
        client = self._checking_client(config)
        where = f"bastion {config.alias} ({config.address})"
        options = self._options(config, client, via, where)
        return await self._login(config.alias, options, client, where, config)

    def _known_hosts_set(self, user: tuple[Path, ...],
                         global_: tuple[Path, ...]) -> KnownHostsSet:
        """A host's known_hosts files; the settings (the command line) win over its config."""
        s = self.settings
        return self._known_hosts_files.set_for(
            (s.known_hosts,) if s.known_hosts is not None else user,
            s.global_known_hosts if s.global_known_hosts is not None else global_)

    def _checking_client(self, config: HostConfig) -> CheckingClient:
        files = self._known_hosts_set(config.user_known_hosts, config.global_known_hosts)
        return CheckingClient(self.host_keys, files,
                              self.host_keys.mode_for(config.strict_host_key_checking),
                              config.key_name)

    async def _host_config(self, alias: str, user: str, port: int | None) -> HostConfig:
        """What the ssh config says for ``alias`` (read once per backend)."""
        key = (alias, user, port)
        found = self._host_configs.get(key)
        if found is None:
            # One thread hop per alias: the cut-down copy and its reading together (the
            # login then takes the copy from the cache, on the loop).
            found = self._host_configs[key] = await asyncio.to_thread(
                self._read_host_config, alias, user, port)
        return found

    def _read_host_config(self, alias: str, user: str, port: int | None) -> HostConfig:
        """Blocking: the cut-down config copy for ``alias``, read as ssh would."""
        files = self._configs.for_host(alias)
        try:
            return host_config(files, alias, user=user, port=port)
        except JumpError:
            # Read the user's own files again, for a message naming their lines rather
            # than those of our cut-down copy.
            host_config(self._configs.originals(), alias, user=user, port=port)
            raise

    async def _config_files(self, alias: str) -> list[str]:
        """The config copy for ``alias``: cached by :meth:`_host_config`, so no thread hop."""
        cached = self._configs.cached(alias)
        if cached is not None:
            return cached
        return await asyncio.to_thread(self._configs.for_host, alias)

    def _host_key_algorithms(self, known: asyncssh.SSHKnownHosts, host: str,
                             port: int) -> list[str] | None:
        """:func:`host_key_algorithms`, worked out once per host and parse of its files
        (a fleet of aliases of a few addresses asks the same question for each alias)."""
        answers = self._algorithms.get(known)
        if answers is None:
            answers = self._algorithms[known] = {}
        if (host, port) not in answers:
            answers[host, port] = host_key_algorithms(known, host, port)
        found = answers[host, port]
        return None if found is None else list(found)

    def _connect_timeout(self, config: HostConfig) -> float:
        """``--connect-timeout`` wins (as ssh's command line), then ConnectTimeout, then 15 s."""
        if self.settings.connect_timeout is not None:
            return self.settings.connect_timeout
        return config.connect_timeout or DEFAULT_CONNECT_TIMEOUT

    @property
    def _reply_timeout(self) -> float:
        """How long a logged-in host gets to answer a probe or a kill."""
        return self.settings.connect_timeout or DEFAULT_CONNECT_TIMEOUT

    async def _login(self, host: str, options: dict[str, object], client: CheckingClient,
                     where: str, config: HostConfig) -> asyncssh.SSHClientConnection:
        options["config"] = await self._config_files(host) or None
        for attempt in range(config.connection_attempts, 0, -1):
            try:
                return await self._login_once(host, options, client, where, config)
            except _Unconnected as exc:
                if attempt == 1:
                    raise SshError(str(exc)) from None
            # ssh's ConnectionAttempts: another try a second later (the host may be booting).
            await asyncio.sleep(1.0)
        raise AssertionError("unreachable: connection_attempts is at least 1")

    async def _login_once(self, host: str, options: dict[str, object],
                          client: CheckingClient, where: str,
                          config: HostConfig) -> asyncssh.SSHClientConnection:
        try:
            return await asyncssh.connect(host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.problem is not None:
                raise HostKeyError(client.problem) from None
            if client.refusal:
                raise SshError(f"{where}: {client.refusal}") from None
            if "revoked" in str(exc).lower():
                raise SshError(f"{where}: host key refused: it is marked @revoked in "
                               f"known_hosts ({exc.reason})") from None
            raise SshError(f"{where}: host key not verifiable: {exc}") from None
        except asyncssh.PermissionDenied as exc:
            raise SshError(f"{where}: authentication failed ({exc.reason})") from None
        except asyncssh.DisconnectError as exc:
            raise SshError(f"{where}: the server closed the connection ({exc.reason})") from None
        except asyncssh.ChannelOpenError as exc:
            raise SshError(f"{where}: the bastion could not reach it ({exc.reason})") from None
        except TimeoutError:
            timeout = self._connect_timeout(config)
            raise _Unconnected(f"{where}: no answer within {timeout:g} s") from None
        except socket.gaierror:
            raise SshError(f"{where}: cannot resolve {config.hostname}") from None
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else (str(exc) or type(exc).__name__)
            raise _Unconnected(f"{where}: cannot connect: {reason}") from None

    def _options(self, config: HostConfig, client: CheckingClient,
                 tunnel: asyncssh.SSHClientConnection | None, where: str,
                 identity_file: str = "") -> dict[str, object]:
        """asyncssh options: ours, then the host's; the ssh config fills in the rest.

        Raises:
            SshError: a known_hosts file that is not the user's own (see
                :mod:`core.backends.known_hosts_files`).
        """
        s = self.settings
        timeout = self._connect_timeout(config)
        try:
            known_hosts = client.files.load()
        except UntrustedFileError as exc:
            raise SshError(f"{where}: known_hosts refused: {exc}") from None
        interval = config.server_alive_interval
        count_max = config.server_alive_count_max
        options: dict[str, object] = {
            # Matched here by name only, as ssh does (asyncssh would match the address too).
            "known_hosts": match_name(known_hosts, config.key_name),
            "connect_timeout": timeout,
            "login_timeout": timeout,
            "keepalive_interval": s.keepalive_interval if interval is None else interval,
            "keepalive_count_max": s.keepalive_count_max if count_max is None else count_max,
            "agent_path": config.agent_path or None,
            "client_factory": lambda: client,
            # AES-GCM first: one call into OpenSSL per packet, where asyncssh's
            # ChaCha20-Poly1305 (its default first choice) does more per packet in Python.
            "encryption_algs": PREFERRED_CIPHERS,
            "port": config.port,
            "username": config.user,
        }
        if not config.own_host_key_choice:
            algorithms = self._host_key_algorithms(known_hosts, config.hostname, config.port)
            if algorithms is not None:
                options["server_host_key_algs"] = algorithms
        if tunnel is not None:
            options["tunnel"] = tunnel
        elif config.proxy_command:
            options["tunnel"] = ProxyCommandTunnel(config.proxy_command)
        explicit = os.path.expanduser(identity_file) if identity_file else ""
        if explicit and os.path.exists(explicit):
            options["client_keys"] = [explicit]
            return options
        missing = [explicit] if explicit else []
        if missing or config.missing_identity_files:
            # ssh logs "no such identity" and goes on with the agent and the other keys;
            # asyncssh would fail on the missing file. [] (not the config's list): the
            # configured files that exist, else asyncssh's default keys, and the agent.
            log.info("%s: no such identity: %s (trying the agent and other keys)", where,
                     ", ".join(missing + list(config.missing_identity_files)))
            options["client_keys"] = list(config.identity_files)
        return options

    async def aclose(self) -> None:
        """Close every connection (the fleet is done), the bastions' last."""
        for host in self._hosts.values():
            if host.connection is not None:
                host.connection.close()
                with contextlib.suppress(Exception):
                    await host.connection.wait_closed()
                host.connection = None
        with contextlib.suppress(Exception):
            await self.bastions.aclose()
        await asyncio.to_thread(self._configs.close)

    def pending_host_keys(self) -> list[HostKeyProblem]:
        """Unknown host keys refused so far, for the user to review in one batch."""
        return list(self.host_keys.pending.values())

    def host_key_warnings(self) -> list[str]:
        """Keys let through only by StrictHostKeyChecking no, one line per host."""
        return list(self.host_keys.warnings.values())

    def host_key_problems(self) -> dict[MachineId, HostKeyProblem]:
        """Each machine whose last connection attempt was refused for its host key, and why.

        Unlike :meth:`pending_host_keys` this names the machines (several may share a host)
        and holds changed keys too, which are refused whatever the user says.
        """
        return dict(self._key_problems)

    @property
    def known_hosts_path(self) -> Path:
        """Where keys of hosts with no UserKnownHostsFile of their own are recorded."""
        first = self.host_keys.known_hosts.first_user
        return first.path if first is not None else Path(DEFAULT_USER_KNOWN_HOSTS[0]).expanduser()

    def trust_host_keys(self, problems: list[HostKeyProblem]) -> None:
        self.host_keys.accept(problems)

    async def trust_scanned_keys(self, machine: Machine, problems: list[HostKeyProblem]
                                 ) -> None:
        endpoint = machine.ssh
        if endpoint is None:
            raise SshError(f"{machine.name}: no SSH address")
        config = await self._host_config(endpoint.host, endpoint.user, endpoint.port)
        files = self._checking_client(config).files
        await asyncio.to_thread(self.host_keys.accept, problems, files)

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
                result = await asyncio.wait_for(answer, self._reply_timeout)
        except HostKeyError as exc:
            return Health(HealthStatus.NOT_READY, str(exc), checked_at=utc_now())
        except SshError as exc:
            text = str(exc)
            refused = "authentication failed" in text or "host key" in text
            status = HealthStatus.NOT_READY if refused else HealthStatus.UNREACHABLE
            return Health(status, text.split(": ", 1)[-1], checked_at=utc_now())
        except TimeoutError:
            return Health(HealthStatus.NOT_READY, "logged in, but the probe (bash) did not "
                          f"answer within {self._reply_timeout:g} s",
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
                await escalate(process, launch.become, self._reply_timeout)
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
            await asyncio.wait_for(stop, self._reply_timeout)
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


class _Unconnected(FleetrunError):
    """The TCP connect (or the handshake) failed: ConnectionAttempts may try again."""


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
