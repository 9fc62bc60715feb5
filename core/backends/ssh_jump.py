"""Bastions: ``ProxyJump`` and ``ProxyCommand`` as OpenSSH reads them, one connection each.

asyncssh follows ``ProxyJump`` itself, but it opens the jump hosts again for every target,
and it reads the hop's Host block from the target's config files (which
:mod:`core.backends.ssh_config_files` cuts down to the target's own lines, so an alias
there has no HostName and fails as "Unknown error -2"). Here each route is resolved as
``ssh`` does (``ssh_config(5)``, shared/reference/ssh-conventions.md §2.3):

- ``ProxyJump a,b``: ``a`` is reached as a fresh ``ssh a`` would (its own Host block,
  including its own ProxyJump), then ``b`` through ``a``, then the target through ``b``;
  ``[user@]host[:port]`` on a hop wins over the hop's config, as ``-l``/``-p`` would;
  ``none`` means direct.
- ``ProxyCommand``: asyncssh expands its tokens (``%h %p %r %n %%``); it runs without a
  shell unless it needs one (pipes, redirections, variables), then through ``sh -c 'exec …'``
  as ssh runs it. ProxyJump and ProxyCommand both set is ssh's "inconsistent options".

Every bastion connection is shared by every target behind it, keyed by who it logs in as
where and through what, and reopened when it has closed.
"""

from __future__ import annotations

import asyncio
import getpass
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core.backends.host_key_names import HostKeyName
from core.backends.ssh_host_options import (
    DEFAULT_GLOBAL_KNOWN_HOSTS,
    DEFAULT_USER_KNOWN_HOSTS,
    FullClientConfig,
    HostOptionError,
    StrictMode,
    agent_path,
    connection_attempts,
    known_hosts_paths,
    present_identity_files,
    strict_mode,
)
from core.errors import FleetrunError

DEFAULT_PORT = 22
MAX_HOPS = 16
"""Longest route followed; a longer one is almost surely hops naming each other."""
_SHELL_SYNTAX = re.compile(r"[|&;<>()$`*?\[\]{}~\n]")


class JumpError(FleetrunError):
    """A route that cannot be followed (bad ProxyJump, a loop); the message says why."""


@dataclass(frozen=True, slots=True)
class Hop:
    """One ``[user@]host[:port]`` of a ProxyJump list (user/port empty when not written)."""

    alias: str
    user: str = ""
    port: int | None = None


@dataclass(frozen=True, slots=True)
class HostConfig:
    """What the ssh config says for one host alias (with any command-line user and port)."""

    alias: str
    hostname: str
    port: int
    user: str
    jump: tuple[Hop, ...] = ()
    proxy_command: tuple[str, ...] = ()
    connect_timeout: float | None = None
    user_known_hosts: tuple[Path, ...] = ()
    """UserKnownHostsFile (ssh's two defaults when unset; empty for ``none``)."""
    global_known_hosts: tuple[Path, ...] = ()
    strict_host_key_checking: StrictMode | None = None
    connection_attempts: int = 1
    server_alive_interval: float | None = None
    server_alive_count_max: int | None = None
    agent_path: str = ""
    """The agent socket (IdentityAgent, else SSH_AUTH_SOCK); "" for no agent."""
    identity_files: tuple[str, ...] = ()
    """The IdentityFile entries that exist (ssh skips the others)."""
    missing_identity_files: tuple[str, ...] = ()
    own_host_key_choice: bool = False
    """HostKeyAlgorithms or HostKeyAlias is set: leave host key negotiation to asyncssh."""
    host_key_alias: str = ""

    @property
    def key_name(self) -> HostKeyName:
        """Who this host is to known_hosts (:mod:`core.backends.host_key_names`)."""
        return HostKeyName(self.hostname, self.port, self.host_key_alias)

    @property
    def address(self) -> str:
        return f"{self.hostname}:{self.port}"


BastionKey = tuple[str, str, int, tuple[object, ...]]
"""(user, hostname, port, key of the bastion it is reached through, or ())."""


def parse_proxy_jump(value: str, where: str) -> tuple[Hop, ...]:
    """The hops of a ProxyJump value (``()`` for ``none``).

    Raises:
        JumpError: A hop that is not ``[user@]host[:port]`` (or ``ssh://`` of that).
    """
    if value.strip().lower() == "none":
        return ()
    hops = []
    for raw in value.split(","):
        text = raw.strip().removeprefix("ssh://").rstrip("/")
        user, _, host = text.rpartition("@")
        port: int | None = None
        if host.startswith("["):  # [v6-address]:port
            address, _, rest = host[1:].partition("]")
            host, port_text = address, rest.removeprefix(":")
        elif host.count(":") == 1:
            host, _, port_text = host.partition(":")
        else:
            port_text = ""
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise JumpError(f"{where}: ProxyJump {value!r}: port {port_text!r} is not "
                                "a number from 1 to 65535")
            port = int(port_text)
        if not host:
            raise JumpError(f"{where}: ProxyJump {value!r}: each hop is [user@]host[:port], "
                            "separated by commas, or the whole value is 'none'")
        hops.append(Hop(host, user, port))
    return tuple(hops)


def proxy_command_argv(command: str) -> tuple[str, ...]:
    """How to run a (token-expanded) ProxyCommand: split, or through ``sh`` if it needs one."""
    if _SHELL_SYNTAX.search(command):
        return ("/bin/sh", "-c", f"exec {command}")
    return tuple(asyncssh.misc.split_args(command))  # asyncssh's own shell-style split


def host_config(paths: Sequence[str], alias: str, *, user: str = "",
                port: int | None = None) -> HostConfig:
    """What ``ssh alias`` (with ``-l user -p port`` when given) would use, read from ``paths``.

    Blocking (reads files, may run ``Match exec``): call it in a thread.

    Raises:
        JumpError: ProxyJump unreadable, or set beside ProxyCommand.
    """
    try:
        config = FullClientConfig.load(None, list(paths), False, False, False,
                                      getpass.getuser(), user or (), alias,
                                      port if port is not None else ())
    except asyncssh.ConfigParseError as exc:
        raise JumpError(f"ssh config: {exc}") from None
    except OSError as exc:  # a config named with --fleet ssh-config:PATH that has gone
        raise JumpError(f"ssh config: {exc.filename}: {exc.strerror}") from None
    hostname = str(config.get("Hostname") or alias)
    jump_value = config.get("ProxyJump")
    command = config.get("ProxyCommand")
    if jump_value and command:
        raise JumpError(f"{alias}: the ssh config sets both ProxyJump and ProxyCommand; ssh "
                        "refuses that too (inconsistent options): keep one")
    timeout = config.get("ConnectTimeout")
    alive = config.get("ServerAliveInterval")
    alive_max = config.get("ServerAliveCountMax")
    present, missing = present_identity_files(config.get("IdentityFile"))
    try:
        strict = strict_mode(config.get("StrictHostKeyChecking"), alias)
        attempts = connection_attempts(config.get("ConnectionAttempts"), alias)
    except HostOptionError as exc:
        raise JumpError(str(exc)) from None
    return HostConfig(
        alias=alias,
        hostname=hostname,
        port=int(str(config.get("Port") or DEFAULT_PORT)),
        user=str(config.get("User") or getpass.getuser()),
        jump=parse_proxy_jump(str(jump_value), alias) if jump_value else (),
        proxy_command=proxy_command_argv(str(command)) if command else (),
        connect_timeout=float(str(timeout)) if timeout else None,
        user_known_hosts=known_hosts_paths(config.get("UserKnownHostsFile"),
                                           DEFAULT_USER_KNOWN_HOSTS),
        global_known_hosts=known_hosts_paths(config.get("GlobalKnownHostsFile"),
                                             DEFAULT_GLOBAL_KNOWN_HOSTS),
        strict_host_key_checking=strict,
        connection_attempts=attempts,
        server_alive_interval=float(str(alive)) if alive is not None else None,
        server_alive_count_max=int(str(alive_max)) if alive_max is not None else None,
        agent_path=agent_path(config.get("IdentityAgent")),
        identity_files=tuple(present),
        missing_identity_files=tuple(missing),
        own_host_key_choice=bool(config.get("HostKeyAlgorithms") or config.get("HostKeyAlias")),
        host_key_alias=str(config.get("HostKeyAlias") or ""),
    )


Resolve = Callable[[str, str, "int | None"], Awaitable[HostConfig]]
"""Reads a host's config (alias, user, port) off the event loop."""
Open = Callable[[HostConfig, "asyncssh.SSHClientConnection | None"],
                Awaitable[asyncssh.SSHClientConnection]]
"""Opens a connection to a bastion, through another connection or directly (raises
:class:`core.backends.ssh.SshError` or a host key error, naming the bastion)."""


class Bastions:
    """The jump-host connections of one backend, each opened once for all its targets."""

    def __init__(self, resolve: Resolve, open_connection: Open) -> None:
        self._resolve = resolve
        self._open = open_connection
        self._connections: dict[BastionKey, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self.opened = 0
        """Bastion connections opened so far (the tests count sharing with it)."""

    async def through(self, hops: Sequence[Hop], target: str) -> asyncssh.SSHClientConnection:
        """The connection to the last of ``hops`` (reached in order), to reach ``target``.

        Raises:
            JumpError: A loop or an over-long route.
        """
        connection, _ = await self._route(hops, (target,))
        return connection

    async def _route(self, hops: Sequence[Hop], seen: tuple[str, ...]
                     ) -> tuple[asyncssh.SSHClientConnection, BastionKey]:
        connection: asyncssh.SSHClientConnection | None = None
        key: BastionKey | None = None
        for index, hop in enumerate(hops):
            if hop.alias in seen or len(seen) > MAX_HOPS:
                route = " -> ".join((*seen, hop.alias))
                raise JumpError(f"jump host loop via {hop.alias} ({route})")
            config = await self._resolve(hop.alias, hop.user, hop.port)
            if index == 0 and config.jump:
                # The first hop is reached as a fresh `ssh hop` would: through its own jumps.
                connection, key = await self._route(config.jump, (*seen, hop.alias))
            key = (config.user, config.hostname, config.port, key or ())
            connection = await self._shared(key, config, connection)
        if connection is None or key is None:
            raise JumpError("ProxyJump names no host")
        return connection, key

    async def _shared(self, key: BastionKey, config: HostConfig,
                      via: asyncssh.SSHClientConnection | None) -> asyncssh.SSHClientConnection:
        task = self._connections.get(key)
        if task is not None and task.done():
            failed = task.cancelled() or task.exception() is not None
            if failed or task.result().is_closed():
                task = None
        if task is None:
            self.opened += 1
            task = asyncio.ensure_future(self._open(config, via))
            self._connections[key] = task
        # shield: one target giving up (cancelled) must not cancel the others' bastion.
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        for task in self._connections.values():
            if not task.done():
                task.cancel()
                continue
            if not task.cancelled() and task.exception() is None:
                task.result().close()
        for task in list(self._connections.values()):
            if task.done() and not task.cancelled() and task.exception() is None:
                await task.result().wait_closed()
        self._connections.clear()
