"""``fleetrun attach``: follow an Azure run again after the process following it stopped."""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import TYPE_CHECKING

from core import config
from core.backends.base import ReattachableBackend
from core.cleanup import remove_ended_runs
from core.fleet import DEFAULT_FLEET, Fleet, open_fleet
from core.fleet.spec_text import split_fleet_specs
from core.journal_store import Journal, MachineRecord, RunRecord
from core.model import RunState
from core.output_hint import setup_output_hint
from core.run_record import run_record
from core.run_view import RunView
from core.runner import RUN_AS_PASSWORD, RunSession, secret_names
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from tui.cli.fleets import fleet_options, follow
from tui.cli.inputs import RUN_AS_PASSWORD_ENV, SECRET_ENV_PREFIX, InputError, read_secret
from tui.cli.options import add_event_output, add_run_id, add_ssh_options

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    attach = sub.add_parser(
        "attach",
        help="follow an Azure run again after fleetrun stopped (crash, kill, reboot)",
        description="Follow the machines of RUN that had not finished when the process "
        "following it stopped: their run commands kept running on Azure. A machine whose "
        "run command was never created (the process died before sending it) is sent now, "
        "under the same pacing. The run is completed in the history with all of their "
        "output.",
    )
    attach.set_defaults(handler=cmd_attach)
    add_run_id(attach)
    attach.add_argument(
        "--no-submit", action="store_true",
        help="send nothing: a machine whose run command never reached Azure ends NotStarted "
        "(the app's ':rerun failed' picks it up later)",
    )
    add_ssh_options(attach)
    add_event_output(attach)


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
        backends = fleet.backends
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
                                 secrets=secrets, submit_unsent=not args.no_submit)

    ended = [m for m in record.machines if m.state.terminal]

    async def clean_up_ended(fleet: Fleet) -> None:
        # The journal holds a machine's end before its run command is deleted: a process
        # killed in between left the run command on the machine, and only attach knows.
        known = {m.id: m for m in fleet.machines}
        failed = await remove_ended_runs(
            record.run_id, [known[m.machine_id] for m in ended if m.machine_id in known],
            fleet.backends.for_machine)
        for machine, why in failed:
            print(f"{machine.name}: its run command could not be deleted ({why}); "
                  "'fleetrun cleanup' removes it", file=sys.stderr)

    session, interrupted = follow(
        lambda: open_fleet(split_fleet_specs(record.fleet) or [DEFAULT_FLEET],
                           fleet_options(args)),
        plan, output, beside=clean_up_ended if ended else None)
    if session is None:
        return EXIT_INTERRUPTED
    # The whole run as recorded: the machines that had ended before, and the ones followed now.
    final = journal.get_run(record.run_id)
    if output == "json":
        json_shapes.print_json(run_record(RunView.from_journal(final)))
    elif output == "table":
        render.show_run(final)
    # As at the end of `run`: machines followed now whose output Azure's tails cut.
    hint = setup_output_hint(session.run, session.backend_for)
    if hint:
        print(hint, file=sys.stderr)
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
