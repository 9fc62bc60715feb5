"""``fleetrun run``: a script, or a saved command, on every machine --target picks."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING

from core import config
from core.fanout import FanoutOptions
from core.fleet import Fleet
from core.fleet.spec_text import join_fleet_specs
from core.journal_store import Journal
from core.model import (
    Command,
    CommandId,
    HealthStatus,
    Machine,
    Run,
    RunApi,
    RunState,
    utc_now,
)
from core.output_dir import OutputDir, prepare_output_dir
from core.output_hint import setup_output_hint
from core.runner import RunSession, check_run
from core.validate import ValidationError
from tui.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tui.cli.fleets import (
    follow,
    open_named,
    report_host_key_warnings,
    report_host_keys,
    select,
    with_health,
)
from tui.cli.inputs import InputError, commands_from, describe_problems, limit_from
from tui.cli.options import add_event_output, add_fleet, add_hosts, add_ssh_options
from tui.cli.run_saved import commands_from_library, confirm_dangerous

if TYPE_CHECKING:
    from core.library import SavedCommand
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    run = sub.add_parser(
        "run",
        help="run a script on many machines",
        description="Run a script on every machine of the fleet that matches --target.",
    )
    run.set_defaults(handler=cmd_run)
    add_fleet(run, "where machines come from: sandbox (the default), sandbox:FILE, local "
              "(repeatable)")
    run.add_argument(
        "--target",
        default="",
        metavar="QUERY",
        help="filter: text, name:GLOB, tag:K=V, os:linux|windows, kind:, health:, "
             "scaleset:NAME, ! negates",
    )
    run.add_argument(
        "--shell",
        metavar="SCRIPT|@FILE",
        help="RunShellScript for the Linux machines (inline, or @path)",
    )
    run.add_argument(
        "--powershell",
        metavar="SCRIPT|@FILE",
        help="RunPowerShellScript for the Windows machines (inline, or @path)",
    )
    run.add_argument(
        "--command",
        dest="saved_command",
        metavar="NAME",
        help="a saved command ('fleetrun commands list'): its scripts, parameter table and "
        "timeout; -p/-a/-P give its parameters",
    )
    run.add_argument(
        "--builtin",
        metavar="ID",
        help="a built-in run command id ('fleetrun commands builtin': ifconfig, IPConfig, "
        "RDPSettings, ...): runs through the action API on the Azure VMs of its OS; -p gives "
        "its parameters",
    )
    run.add_argument(
        "--api",
        choices=[api.value for api in RunApi],
        default=RunApi.AUTO.value,
        help="Azure VMs: the managed Run Command API, the action API (no exit code, last 4 KB "
        "of output, one at a time per VM, not on Arc), or auto (the default: managed, falling "
        "back per VM to action when managed is refused (403) or the agent is too old)",
    )
    run.add_argument(
        "--yes",
        action="store_true",
        help="run a dangerous saved command without typing the target count to confirm",
    )
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="named parameter (an environment variable on Linux)",
    )
    run.add_argument(
        "-a",
        "--arg",
        action="append",
        default=[],
        metavar="VALUE",
        help="unnamed parameter (a positional argument on Linux); with --command, fills the "
        "parameters -p did not name, in order",
    )
    run.add_argument(
        "-P",
        "--protected",
        action="append",
        default=[],
        metavar="NAME",
        help="protected parameter; its value is read without echo, or from "
        "$FLEETRUN_SECRET_<NAME> when there is no terminal",
    )
    run.add_argument(
        "--timeout",
        default=None,
        metavar="S",
        help="seconds per machine, 0 for no limit (default 3600, or the saved command's)",
    )
    run.add_argument(
        "--concurrency", default="50", metavar="N|N%", help="machines running at once (default 50)"
    )
    run.add_argument(
        "--max-errors",
        default=None,
        metavar="N|N%",
        help="after N failures start no new machine (default: never stop)",
    )
    run.add_argument(
        "--canary",
        action="store_true",
        help="ramp up 1, 2, 4, ... machines, each wave after the last finished",
    )
    add_ssh_options(run)
    add_hosts(run)
    run.add_argument(
        "--run-as",
        default="",
        metavar="USER",
        help="run the script as USER (on Azure the handler uses sudo; over SSH sudo or su, "
        "see --become-method; on this machine and the sandbox fleetrun, as root, switches "
        "user itself)",
    )
    run.add_argument(
        "--become-method",
        choices=("sudo", "su"),
        default="",
        help="how SSH hosts switch to the --run-as (or inventory become) user: sudo "
        "(default) or su; overrides the inventory's ansible_become_method",
    )
    run.add_argument(
        "--run-as-password",
        action="store_true",
        help="ask once for USER's password (or read $FLEETRUN_SECRET_RUN_AS_PASSWORD): "
        "Azure's handler and SSH hosts' sudo/su use it (fed on stdin, never on a command line)",
    )
    run.add_argument(
        "--output-dir",
        metavar="DIR",
        help="also write each machine's stdout and stderr to DIR/MACHINE.out and .err as "
        "they arrive (as pssh -o/-e; protected values masked), from when the machine "
        "starts; DIR is created 0700 if missing, the files 0600; a file already there "
        "with that name is replaced (a link there is not followed)",
    )
    run.add_argument(
        "--group-noise",
        action="store_true",
        help="in the table, group outputs modulo noise: times, durations, load averages, "
        "PIDs, IP addresses, hex ids and the machine's own name count as equal (as n in "
        "the app's groups view)",
    )
    add_event_output(run, lines=True)


def cmd_run(args: Namespace) -> int:
    saved: SavedCommand | None = None
    if args.builtin:
        if args.shell or args.powershell or args.saved_command:
            raise InputError("--builtin: runs a built-in command instead of a script: leave "
                             "out --shell, --powershell and --command")
        if args.api == RunApi.MANAGED.value:
            raise InputError("--api managed: a built-in (--builtin) runs only through the "
                             "action API; leave out --api or give --api action")
        commands: dict[CommandId, Command] = {}
    elif args.saved_command:
        commands, saved = commands_from_library(args)
    else:
        commands = commands_from(args)
    api = RunApi(args.api)
    commands = {key: replace(command, api=api) for key, command in commands.items()}
    options = FanoutOptions(
        concurrency=limit_from(args.concurrency, "concurrency"),
        max_errors=limit_from(args.max_errors, "max_errors"),
        canary=args.canary,
    )
    output = args.output or "table"
    # Checked before the fleet opens: a directory that cannot be written costs nothing.
    directory = prepare_output_dir(args.output_dir) if args.output_dir else None
    output_dirs: list[OutputDir] = []
    fleets: list[Fleet] = []

    async def plan(fleet: Fleet) -> RunSession:
        fleets.append(fleet)
        session = await _plan(args, fleet, await select(args, fleet), commands, options, saved)
        if directory is not None:
            output_dirs.append(OutputDir(directory, session.run, session.output))
        return session

    def write_output_dir(session: RunSession) -> Awaitable[None]:
        return output_dirs[0].write(session.subscribe(max_pending=2_000))

    session, interrupted = follow(lambda: open_named(args), plan, output,
                                  alongside=write_output_dir if directory else None)
    for written in output_dirs:
        if written.problem():
            print(written.problem(), file=sys.stderr)
    if session is None:
        return EXIT_INTERRUPTED
    # The report's modules load once the run is over: none of them before its connections.
    if output == "json":
        from core.run_record import run_record
        from core.run_view import RunView
        from tui.cli import json_shapes

        json_shapes.print_json(run_record(RunView(session.run, session.output, utc_now())))
    elif output == "table":
        from tui.cli import render

        render.run_report(session.run, session.output, noise=args.group_noise)
    for fleet in fleets:  # after the report: the last thing a user reads
        report_host_key_warnings(fleet)
    hint = setup_output_hint(session.run, session.backend_for)
    if hint:
        print(hint, file=sys.stderr)
    if interrupted:
        return EXIT_INTERRUPTED
    return run_exit_code(session.run)


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
    backends = fleet.backends
    if not selected:
        where = f" match --target {args.target!r}" if args.target else " are in the fleet"
        total = len(fleet.machines)
        raise InputError(f"--target: no machines{where} ({total} in {', '.join(args.fleet)})")
    if args.builtin:
        # Deferred: the action API's client (Azure, httpx) is for --builtin only.
        from tui.cli.builtins import builtin_run

        selected, builtin = await builtin_run(args, fleet, selected)
        commands = {builtin.command_id: builtin}
    pairs = _assign(selected, commands, saved)
    # The gate RunSession.plan applies again below; passed here first so bad input costs
    # no health check, and its warnings come before a dangerous command's confirmation.
    warnings = check_run(pairs, backends.for_machine)
    if warnings:
        print(describe_problems(ValidationError(warnings)), file=sys.stderr)

    # Health is checked only once the input is known good: on Azure it costs API calls.
    # Before a run, SSH hosts are only connected to (the run reuses each connection):
    # a host that cannot run the script says so in its own result.
    checked = {m.id: m for m in await with_health(backends, [m for m, _ in pairs],
                                                  before_run=True)}
    report_host_keys(fleet)
    pairs = [(checked[m.id], c) for m, c in pairs]
    refuse_unless_permitted([m for m, _ in pairs])
    if saved is not None and saved.dangerous:
        await confirm_dangerous(saved, pairs, yes=args.yes)
    return RunSession.plan(
        pairs,
        backends.for_machine,
        fleet=join_fleet_specs(args.fleet),
        target=args.target,
        options=options,
        journal=Journal(config.journal_path()),
    )


def refuse_unless_permitted(machines: list[Machine]) -> None:
    """Say on stderr which machines the caller's Azure role does not let it run on.

    Raises:
        NothingPermitted: It may run on none of them: refused before anything is sent or
            recorded (exit 2, like any refusal of the world's).
    """
    if not any(m.health.status is HealthStatus.NOT_PERMITTED for m in machines):
        return  # before the import: an SSH run loads nothing of Azure's
    from core.azure.permissions import NothingPermitted, permission_line

    line = permission_line(machines) or ""
    if all(m.health.status is HealthStatus.NOT_PERMITTED for m in machines):
        raise NothingPermitted(f"{line}; nothing was run")
    print(line, file=sys.stderr)


def run_exit_code(run: Run) -> int:
    states = {mr.state for mr in run.machines.values()}
    return EXIT_OK if states == {RunState.SUCCEEDED} else EXIT_FAILED
