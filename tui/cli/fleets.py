"""Opening the fleet a command names, picking its machines, and following a run on them."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from argparse import Namespace
from collections.abc import Awaitable, Callable

from core import config
from core.backends.base import HostKeyCheckingBackend
from core.backends.host_keys import host_pattern
from core.fleet import Backends, Fleet, FleetOptions, open_fleet
from core.fleet.default_fleet import DefaultFleetError, default_fleet
from core.inventory.host_list import HostDefaults, parse_port_text
from core.inventory.ssh_hosts import PORT_ALLOWED
from core.model import Machine
from core.runner import RunSession
from core.user_paths import UnknownUserError, expand_user
from tui.cli.errors import UsageError

AD_HOC_PREFIX = "ssh:"
"""The ``--fleet`` source ``--hosts`` stands for."""


def fleet_or_default(fleet: list[str] | None) -> list[str]:
    """``--fleet`` as given, else the configured default (see core.fleet.default_fleet)."""
    if fleet:
        return fleet
    from core.azure.settings import SettingsError  # only a default fleet reads [azure]

    try:
        return default_fleet(config.config_dir() / "config.toml")
    except (DefaultFleetError, SettingsError) as exc:
        raise UsageError(str(exc)) from None


async def open_named(args: Namespace) -> Fleet:
    """The fleets --fleet names (the default one when none is given); the caller closes them."""
    hosts = getattr(args, "hosts", None)
    if hosts is not None:
        args.fleet = [*(args.fleet or []), f"{AD_HOC_PREFIX}{hosts}"]
    args.fleet = fleet_or_default(args.fleet)
    return await open_fleet(args.fleet, fleet_options(args))


def fleet_options(args: Namespace) -> FleetOptions:
    return FleetOptions(accept_new_host_keys=getattr(args, "accept_new_host_keys", False),
                        become_method=getattr(args, "become_method", "") or "",
                        host_defaults=host_defaults(args),
                        connect_timeout=getattr(args, "connect_timeout", None))


def host_defaults(args: Namespace) -> HostDefaults:
    """``-l``, ``-i`` and ``--port``: what ad-hoc hosts get when their names do not say."""
    port_text = getattr(args, "port", None)
    port = None
    if port_text is not None:
        port = parse_port_text(port_text.strip())
        if port is None:
            raise UsageError(f"--port {port_text!r}: {PORT_ALLOWED}")
    identity = getattr(args, "identity", "")
    if identity:
        try:
            path = expand_user(identity)
        except UnknownUserError as exc:
            raise UsageError(f"-i: {exc}") from None
        if not path.is_file():
            raise UsageError(f"-i {identity!r}: no such file; give the private key's path")
        identity = str(path)
    return HostDefaults(user=getattr(args, "login", ""), identity_file=identity, port=port)


def report_host_keys(fleet: Fleet) -> None:
    """Hosts skipped for keys known_hosts does not know: say which, with fingerprints."""
    pending = [problem for backend in fleet.backends
               if isinstance(backend, HostKeyCheckingBackend)
               for problem in backend.pending_host_keys()]
    if not pending:
        return
    lines = [f"{len(pending)} SSH host(s) presented keys that known_hosts does not have; "
             "they were left out:"]
    lines += [f"  {host_pattern(p.host, p.port)}  {p.fingerprint}" for p in pending]
    lines.append("Review them with `fleetrun hostkeys scan --fleet ...` and pin the ones you "
                 "checked with `fleetrun hostkeys trust HOST...`; or run again with "
                 "--accept-new-host-keys to trust whatever they present now and record it in "
                 "known_hosts.")
    print("\n".join(lines), file=sys.stderr)


def report_host_key_warnings(fleet: Fleet) -> None:
    """Keys let through only because a host's config says StrictHostKeyChecking no: one
    line per host on stderr (fleetrun's log file alone would hide them)."""
    for backend in fleet.backends:
        if isinstance(backend, HostKeyCheckingBackend):
            for warning in backend.host_key_warnings():
                print(f"warning: {warning}", file=sys.stderr)


async def select(args: Namespace, fleet: Fleet) -> list[Machine]:
    """The machines --target picks."""
    machines = fleet.machines
    if not args.target.strip():
        return list(machines)
    from core.query import filter_machines  # here: most runs name their hosts, not a query

    if "health:" in args.target.lower():
        # The inventory does not know every agent's state (a VM's needs a call of its own):
        # a query about health gets it checked first.
        machines = await with_health(fleet.backends, machines)
    return filter_machines(machines, args.target)


async def with_health(backends: Backends, machines: list[Machine], *,
                      before_run: bool = False) -> list[Machine]:
    """The machines with their health checked (``before_run``: as a run needs it)."""
    return (await backends.refresh_health(machines, before_run=before_run) if machines
            else [])


def follow(
    opener: Callable[[], Awaitable[Fleet]],
    plan: Callable[[Fleet], Awaitable[RunSession]],
    output: str,
    beside: Callable[[Fleet], Awaitable[None]] | None = None,
    alongside: Callable[[RunSession], Awaitable[None]] | None = None,
) -> tuple[RunSession | None, bool]:
    """Open a fleet, plan a run on it and follow it to the end, all in one event loop;
    ``beside`` runs on the same fleet meanwhile, and the fleet closes once both are done.
    ``alongside`` is called with the session before it starts (so it can subscribe to see
    every event) and what it returns is awaited to its end, even when interrupted.

    Returns the session (None when interrupted before it existed) and whether Ctrl-C
    interrupted it.
    """
    sessions: list[RunSession] = []

    async def main() -> None:
        fleet = await opener()
        try:
            session = await plan(fleet)
            sessions.append(session)
            # Only now (rich's console, progress and tables): the hosts are being worked on.
            from tui.cli import render

            extra = None if alongside is None else asyncio.ensure_future(alongside(session))
            try:
                if beside is None:
                    await render.follow_run(session, output)
                else:
                    await asyncio.gather(render.follow_run(session, output), beside(fleet))
            finally:
                if extra is not None:
                    if session.run.ended is None:
                        # The run never got going, so nothing will end what it follows.
                        extra.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.shield(extra)
        finally:
            await fleet.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return (sessions[0] if sessions else None), True
    return sessions[0], False
