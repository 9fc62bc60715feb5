"""What each headless subcommand does."""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace
from collections.abc import Awaitable, Callable
from pathlib import Path

from core import config
from core.azure.arm import ArmError
from core.azure.auth import AuthError
from core.azure.blob import BlobError
from core.azure.settings import SettingsError
from core.backends.base import ReattachableBackend
from core.backends.registry import Backends
from core.backends.ssh import SshBackend
from core.backends.ssh_hostkeys import host_pattern
from core.fanout import FanoutOptions
from core.inventory import DEFAULT_FLEET, Fleet, FleetError, FleetOptions, open_fleet
from core.inventory.default_fleet import DefaultFleetError, default_fleet
from core.journal import Journal, JournalError, MachineRecord, RunRecord
from core.library import LibraryError, SavedCommand
from core.model import Command, CommandId, Machine, MachineKind, Run, RunState
from core.query import QueryError, filter_machines
from core.run_export import ExportError, parse_format
from core.run_export import render as render_export
from core.run_export import write as write_export
from core.runner import RUN_AS_PASSWORD, RunSession, secret_names
from core.validate import ValidationError, raise_if_errors, validate_selection
from tui import cli_render as render
from tui.cli import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError
from tui.cli_input import (
    RUN_AS_PASSWORD_ENV,
    SECRET_ENV_PREFIX,
    InputError,
    commands_from,
    describe_problems,
    limit_from,
    read_secret,
)
from tui.cli_library import cmd_commands, commands_from_library, confirm_dangerous


def dispatch(args: Namespace) -> int:
    from tui.cli_sandbox import cmd_sandbox  # deferred: uvicorn loads only to serve

    handlers = {
        "run": cmd_run,
        "attach": cmd_attach,
        "history": cmd_history,
        "show": cmd_show,
        "export": cmd_export,
        "machines": cmd_machines,
        "sandbox": cmd_sandbox,
        "commands": cmd_commands,
    }
    try:
        return handlers[args.command](args)
    except (InputError, FleetError, QueryError, JournalError, ExportError, LibraryError) as exc:
        raise UsageError(str(exc)) from None
    except ValidationError as exc:
        raise UsageError(describe_problems(exc)) from None
    except (ArmError, AuthError, BlobError) as exc:
        # The service refused or could not be reached while listing or planning: say what
        # it said (codes, messages; never a token or a SAS signature), not a traceback.
        raise UsageError(f"azure: {exc}") from None


async def _open(args: Namespace) -> Fleet:
    """The fleets --fleet names (the sandbox when none is given); the caller closes them."""
    if not args.fleet:
        try:
            args.fleet = default_fleet(config.config_dir() / "config.toml")
        except (DefaultFleetError, SettingsError) as exc:
            raise InputError(str(exc)) from None
    return await open_fleet(args.fleet, _fleet_options(args))


def _fleet_options(args: Namespace) -> FleetOptions:
    return FleetOptions(accept_new_host_keys=getattr(args, "accept_new_host_keys", False))


def _report_host_keys(fleet: Fleet) -> None:
    """SSH hosts skipped for keys known_hosts does not know: say which, with fingerprints."""
    backend = fleet.backends.get(MachineKind.SSH)
    pending = backend.pending_host_keys() if isinstance(backend, SshBackend) else []
    if not pending:
        return
    lines = [f"{len(pending)} SSH host(s) presented keys that known_hosts does not have; "
             "they were left out:"]
    lines += [f"  {host_pattern(p.host, p.port)}  {p.fingerprint}" for p in pending]
    lines.append("Check these fingerprints, then run again with --accept-new-host-keys to "
                 "trust them and record them in known_hosts.")
    print("\n".join(lines), file=sys.stderr)


async def _select(args: Namespace, fleet: Fleet) -> list[Machine]:
    """The machines --target picks."""
    machines = fleet.machines
    if "health:" in args.target.lower():
        # The inventory does not know every agent's state (a VM's needs a call of its own):
        # a query about health gets it checked first.
        machines = await _with_health(Backends(fleet.backends), machines)
    return filter_machines(machines, args.target)


def _follow(
    opener: Callable[[], Awaitable[Fleet]],
    plan: Callable[[Fleet], Awaitable[RunSession]],
    output: str,
) -> tuple[RunSession | None, bool]:
    """Open a fleet, plan a run on it and follow it to the end, all in one event loop.

    Returns the session (None when interrupted before it existed) and whether Ctrl-C
    interrupted it.
    """
    sessions: list[RunSession] = []

    async def main() -> None:
        fleet = await opener()
        try:
            session = await plan(fleet)
            sessions.append(session)
            await render.follow_run(session, output)
        finally:
            await fleet.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return (sessions[0] if sessions else None), True
    return sessions[0], False


async def _with_health(backends: Backends, machines: list[Machine]) -> list[Machine]:
    return await backends.refresh_health(machines) if machines else []


def cmd_machines(args: Namespace) -> int:
    async def listing() -> list[Machine]:
        fleet = await _open(args)
        try:
            selected = await _select(args, fleet)
            if args.no_check:
                return selected
            checked = await _with_health(Backends(fleet.backends), selected)
            _report_host_keys(fleet)
            return checked
        finally:
            await fleet.aclose()

    machines = asyncio.run(listing())
    if args.output == "json":
        render.print_json([render.machine_json(m) for m in machines])
    else:
        render.machines_table(machines)
    return EXIT_OK


def _assign(
    machines: list[Machine], commands: dict[CommandId, Command], saved: SavedCommand | None = None
) -> list[tuple[Machine, Command]]:
    """Each machine gets the command for its OS; a missing script type is bad input."""
    pairs: list[tuple[Machine, Command]] = []
    missing: dict[CommandId, list[str]] = {}
    for machine in machines:
        command_id = CommandId.for_os(machine.os)
        command = commands.get(command_id)
        if command is None:
            missing.setdefault(command_id, []).append(machine.name)
        else:
            pairs.append((machine, command))
    for command_id, names in missing.items():
        flag = "--shell" if command_id is CommandId.SHELL else "--powershell"
        os_name = command_id.os.value
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        if saved is not None:
            raise InputError(
                f"--command {saved.name}: {len(names)} {os_name} machine(s) selected but it has "
                f"no {flag.lstrip('-')} script: {shown}; leave them out with --target "
                f"'!os:{os_name}'"
            )
        raise InputError(
            f"{flag}: {len(names)} {os_name} machine(s) selected but no {flag} script: {shown}; "
            f"give {flag}, or leave them out with --target '!os:{os_name}'"
        )
    return pairs


def cmd_run(args: Namespace) -> int:
    saved: SavedCommand | None = None
    if args.saved_command:
        commands, saved = commands_from_library(args)
    else:
        commands = commands_from(args)
    options = FanoutOptions(
        concurrency=limit_from(args.concurrency, "concurrency"),
        max_errors=limit_from(args.max_errors, "max_errors"),
        canary=args.canary,
    )
    output = args.output or "table"

    async def plan(fleet: Fleet) -> RunSession:
        return await _plan(args, fleet, await _select(args, fleet), commands, options, saved)

    session, interrupted = _follow(lambda: _open(args), plan, output)
    if session is None:
        return EXIT_INTERRUPTED
    if output == "json":
        render.print_json(render.run_json(session.run, session.output))
    elif output == "table":
        render.run_report(session.run, session.output)
    if interrupted:
        return EXIT_INTERRUPTED
    return run_exit_code(session.run)


async def _plan(
    args: Namespace,
    fleet: Fleet,
    selected: list[Machine],
    commands: dict[CommandId, Command],
    options: FanoutOptions,
    saved: SavedCommand | None = None,
) -> RunSession:
    """Check the selection and the commands, then the machines' health, and plan the run.

    A dangerous saved command is confirmed (``--yes`` or the target count typed) once the
    machines that will really run it are known.
    """
    backends = Backends(fleet.backends)
    if not selected:
        where = f" match --target {args.target!r}" if args.target else " are in the fleet"
        total = len(fleet.machines)
        raise InputError(f"--target: no machines{where} ({total} in {', '.join(args.fleet)})")
    pairs = _assign(selected, commands, saved)
    problems = validate_selection(pairs)
    raise_if_errors(problems)
    if problems:
        print(describe_problems(ValidationError(problems)), file=sys.stderr)

    # Health is checked only once the input is known good: on Azure it costs API calls.
    checked = {m.id: m for m in await _with_health(backends, [m for m, _ in pairs])}
    _report_host_keys(fleet)
    pairs = [(checked[m.id], c) for m, c in pairs]
    if saved is not None and saved.dangerous:
        await confirm_dangerous(saved, pairs, yes=args.yes)
    return RunSession.plan(
        pairs,
        backends.for_machine,
        fleet=",".join(args.fleet),
        target=args.target,
        options=options,
        journal=Journal(config.journal_path()),
    )


def cmd_attach(args: Namespace) -> int:
    journal = Journal(config.journal_path())
    record = journal.get_run(args.run_id)
    if record.status == "running":
        raise InputError(f"RUN: run {record.run_id} is still followed by process {record.pid}; "
                         "attach once it has stopped")
    unfinished = [m for m in record.machines if not m.state.terminal]
    if not unfinished:
        raise InputError(f"RUN: every machine of run {record.run_id} has ended; "
                         f"'fleetrun show {record.run_id}' shows the results")
    output = args.output or "table"
    secrets = _secrets_again(record, unfinished)

    async def plan(fleet: Fleet) -> RunSession:
        known = {m.id: m for m in fleet.machines}
        missing = [m.name for m in unfinished if m.machine_id not in known]
        if missing:
            raise InputError(f"RUN: {len(missing)} machine(s) of run {record.run_id} are "
                             f"not in fleet {record.fleet!r} now: {', '.join(missing[:5])}")
        backends = Backends(fleet.backends)
        machines = [known[m.machine_id] for m in unfinished]
        followable = [m for m in machines
                      if isinstance(backends.for_machine(m), ReattachableBackend)]
        lost = [m.name for m in machines if m not in followable]
        if lost:
            # Only a service keeps a run (and its output) for a later client: an SSH host
            # kills what nobody follows, and a local run's output went to the dead process.
            print(f"{len(lost)} machine(s) ran over SSH or locally and cannot be followed "
                  f"again; they stay Unknown: {', '.join(lost[:5])}", file=sys.stderr)
        if not followable:
            raise InputError(f"RUN: nothing to attach to in run {record.run_id}: only Azure "
                             "runs outlive fleetrun; rerun the others")
        return RunSession.resume(record, followable, backends.for_machine, journal=journal,
                                 secrets=secrets)

    session, interrupted = _follow(
        lambda: open_fleet(record.fleet.split(",") if record.fleet else [DEFAULT_FLEET],
                           _fleet_options(args)),
        plan, output)
    if session is None:
        return EXIT_INTERRUPTED
    # The whole run as recorded: the machines that had ended before, and the ones followed now.
    final = journal.get_run(record.run_id)
    if output == "json":
        render.print_json(render.run_record_json(final, with_machines=True))
    elif output == "table":
        render.show_run(final)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if all(m.state is RunState.SUCCEEDED for m in final.machines) else EXIT_FAILED


def _secrets_again(record: RunRecord, machines: list[MachineRecord]) -> dict[str, str]:
    """The protected values of the machines' commands, asked for again as ``run`` asks.

    The journal never had them, and what the machines print from here on must be masked
    like the rest: without them fleetrun does not attach.
    """
    names = dict.fromkeys(name for m in machines for name in secret_names(record.command_for(m)))
    interactive = sys.stdin.isatty()
    secrets: dict[str, str] = {}
    for name in names:
        if name == RUN_AS_PASSWORD:
            label, variable = "run-as password", RUN_AS_PASSWORD_ENV
        else:
            label, variable = name, SECRET_ENV_PREFIX + name
        try:
            secrets[name] = read_secret(label, variable, interactive=interactive)
        except InputError:
            raise InputError(
                f"RUN: run {record.run_id} had the protected value {label}; its output is "
                f"masked with it, so it is needed again: set {variable} or attach from a "
                "terminal") from None
    return secrets


def run_exit_code(run: Run) -> int:
    states = {mr.state for mr in run.machines.values()}
    return EXIT_OK if states == {RunState.SUCCEEDED} else EXIT_FAILED


def cmd_history(args: Namespace) -> int:
    if not 1 <= args.limit <= 1_000_000:  # SQLite takes 64-bit integers, no more
        raise InputError(f"--limit: {args.limit} is not allowed; use 1 to 1000000")
    runs = Journal(config.journal_path()).list_runs(limit=args.limit)
    if args.output == "json":
        render.print_json([render.run_record_json(r, with_machines=False) for r in runs])
    else:
        render.history_table(runs)
    return EXIT_OK


def cmd_show(args: Namespace) -> int:
    record = Journal(config.journal_path()).get_run(args.run_id)
    if args.machine is None:
        if args.full:
            raise InputError("--full: name a MACHINE to show its full output")
        if args.output == "json":
            render.print_json(render.run_record_json(record, with_machines=True))
        else:
            render.show_run(record)
        return EXIT_OK
    machine = render.find_machine(record, args.machine)
    if args.output == "json":
        render.print_json(render.machine_record_json(machine, full=args.full))
    elif args.full:
        render.print_full_output(machine, args.stream, raw=args.raw)
    else:
        render.show_machine(record, machine)
    return EXIT_OK


def cmd_export(args: Namespace) -> int:
    record = Journal(config.journal_path()).get_run(args.run_id)
    session = RunSession.recorded(record)
    fmt = parse_format(args.format)
    if args.output is None:
        sys.stdout.write(render_export(session.run, session.output, fmt))
        return EXIT_OK
    try:
        path = write_export(session.run, session.output, fmt, Path(args.output))
    except ExportError as exc:
        raise InputError(f"-o: {exc}") from None
    print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK
