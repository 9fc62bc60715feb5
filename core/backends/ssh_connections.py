"""SSH connections: one per host, opened on first use and kept; bastions, host keys.

Each host is reached as its ssh config block says (:mod:`core.backends.ssh_jump`: ProxyJump
and ProxyCommand, ConnectTimeout, ConnectionAttempts, ServerAlive*, IdentityAgent), and
its key is checked against its own known_hosts files under its StrictHostKeyChecking
(:mod:`core.backends.ssh_hostkeys`, :mod:`core.backends.known_hosts_files`). A host's keys
can also be collected without logging in (:mod:`core.backends.ssh_key_scan`).
:class:`~core.backends.ssh.SshBackend` runs commands over these connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from core.backends.host_key_names import match_name
from core.backends.host_keys import HostKeyProblem
from core.backends.known_hosts_files import KnownHostsFiles, KnownHostsSet, UntrustedFileError
from core.backends.ssh_config_files import ConfigFiles
from core.backends.ssh_host_options import DEFAULT_GLOBAL_KNOWN_HOSTS, DEFAULT_USER_KNOWN_HOSTS
from core.backends.ssh_hostkeys import (
    CheckingClient,
    HostKeyError,
    HostKeyPolicy,
    host_key_algorithms,
)
from core.backends.ssh_jump import Bastions, HostConfig, JumpError, host_config
from core.backends.ssh_proxy_command import ProxyCommandTunnel
from core.errors import FleetrunError
from core.model import (
    Machine,
    MachineId,
    SshEndpoint,
)

if TYPE_CHECKING:
    # Scanning keys is no part of a run: a run's start loads neither module (about 4 ms).
    from core.backends.ssh_key_scan import PresentedKey
    from core.host_key_scan import HostScan

log = logging.getLogger(__name__)

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
            5,000-host fleet must not open 5,000 sockets in one instant, nor start more key
            exchanges than the client's CPU finishes within the connect timeout: at about
            7 ms of CPU each, 512 take under 4 s). Runs are bounded first by their own
            ``--concurrency`` (50 by default); this is the bound when they ask for more.
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
    max_handshakes: int = 512
    become_method: str = ""
    """``--become-method``: sudo or su for every host; "" leaves it to the inventory."""


class SshError(FleetrunError):
    """A host could not be reached or logged into; the message says why, for a person."""


@dataclass(slots=True)
class _Host:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    connection: asyncssh.SSHClientConnection | None = None


class SshConnections:
    """Every SSH host's connection, and what reaching and trusting hosts takes."""

    def __init__(self, settings: SshSettings) -> None:
        self.settings = settings
        self._configs = ConfigFiles(self.settings.config)
        self._config_reader = ThreadPoolExecutor(1, thread_name_prefix="fleetrun-ssh-config")
        """Reads each host's ssh config off the loop, one at a time, in its own thread: in
        the loop's shared pool, a fleet's worth of reads queued ahead of asyncssh's own
        option building, and the first connection waited for the last host's config."""
        self._handshakes = asyncio.Semaphore(self.settings.max_handshakes)
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

    # -- connecting ----------------------------------------------------------------------

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
        from core.backends.ssh_key_scan import scan_host

        return await scan_host(self._presented_key, machine)

    async def _presented_key(self, machine: Machine, algorithms: Sequence[str]) -> PresentedKey:
        from core.backends.ssh_key_scan import NO_TRUSTED_KEYS, KeyCollector

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
            found = self._host_configs[key] = await asyncio.get_running_loop(
            ).run_in_executor(self._config_reader, self._read_host_config, alias, user, port)
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
        return await asyncio.get_running_loop().run_in_executor(
            self._config_reader, self._configs.for_host, alias)

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
    def reply_timeout(self) -> float:
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
        self._config_reader.shutdown(wait=False)

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


class _Unconnected(FleetrunError):
    """The TCP connect (or the handshake) failed: ConnectionAttempts may try again."""
