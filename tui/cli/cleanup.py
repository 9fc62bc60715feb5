"""``fleetrun cleanup``: list and delete the ``fleetrun-*`` run commands left on a fleet."""

from __future__ import annotations

import asyncio
import contextlib
from argparse import Namespace
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from core import config
from core.cleanup import CleanupItem, CleanupReport, Outcome, clean_up, cleanable, runs_to_keep
from core.journal_store import Journal
from core.model import Machine
from core.terminal_text import inert
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_FAILED, EXIT_OK
from tui.cli.fleets import open_named, select
from tui.cli.inputs import InputError
from tui.cli.options import add_fleet, add_table_output

if TYPE_CHECKING:
    from tui.cli.options import Subparsers

JOURNAL_RUNS = 100_000
"""How many of the journal's newest runs are checked for run commands still needed."""
OUTCOME_STYLES = {Outcome.DELETED: "green", Outcome.WOULD_DELETE: "yellow",
                  Outcome.KEPT: "dim", Outcome.FAILED: "red"}


def add_parser(sub: Subparsers) -> None:
    cleanup = sub.add_parser(
        "cleanup",
        help="delete the run commands fleetrun left on Azure VMs and Arc servers",
        description="List the fleetrun-* run commands on the fleet's VMs and Arc servers "
        "and delete the ones left behind (a VM holds at most 25), under the same ARM "
        "budget as a run. Kept: run commands still running (deleting one stops its "
        "script) and those of runs this computer still follows or can still attach to.",
    )
    cleanup.set_defaults(handler=cmd_cleanup)
    add_fleet(cleanup, "the fleet to clean (repeatable); default: as for 'run'")
    cleanup.add_argument("--target", default="", metavar="QUERY",
                         help="only these machines (as 'run --target')")
    cleanup.add_argument("--dry-run", action="store_true",
                         help="list what would be deleted; delete nothing")
    cleanup.add_argument("--include-running", action="store_true",
                         help="delete run commands still running too, which stops their scripts")
    add_table_output(cleanup)


def cmd_cleanup(args: Namespace) -> int:
    keep = runs_to_keep(Journal(config.journal_path()).list_runs(JOURNAL_RUNS))
    show_progress = args.output == "table" and render.err.is_terminal

    async def cleaning() -> CleanupReport:
        fleet = await open_named(args)
        try:
            backend_for = fleet.backends.for_machine
            machines = cleanable(await select(args, fleet), backend_for)
            if not machines:
                raise InputError(f"--fleet: {', '.join(args.fleet)} has no Azure VMs or Arc "
                                 "servers (only their run commands are left behind)")
            progress = _progress(len(machines)) if show_progress else None

            def done(_machine: Machine, _items: Sequence[CleanupItem]) -> None:
                if progress is not None:
                    progress.advance(progress.task_ids[0])

            with progress if progress is not None else contextlib.nullcontext():
                return await clean_up(machines, backend_for, dry_run=args.dry_run,
                                      keep_runs=keep, include_running=args.include_running,
                                      on_machine=done)
        finally:
            await fleet.aclose()

    report = asyncio.run(cleaning())
    if args.output == "json":
        json_shapes.print_json(report_json(report, dry_run=args.dry_run))
    else:
        _print_report(report, dry_run=args.dry_run)
    failed = report.counts()[Outcome.FAILED.value] or report.unlisted
    return EXIT_FAILED if failed else EXIT_OK


def _progress(total: int) -> Progress:
    progress = Progress(TextColumn("[bold]cleanup"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("machines"), TimeElapsedColumn(), console=render.err,
                        transient=True, refresh_per_second=render.REFRESH_HZ)
    progress.add_task("machines", total=total)
    return progress


def report_json(report: CleanupReport, *, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "machines": report.machines,
        "counts": report.counts(),
        "run_commands": [{
            "machine": item.machine.name,
            "machine_id": item.machine.id,
            "name": item.found.name,
            "run_id": item.found.run_id,
            "execution_state": item.found.execution_state,
            "outcome": item.outcome.value,
            "reason": item.reason,
        } for item in report.items],
        "unlisted": [{"machine": m.name, "machine_id": m.id, "error": error}
                     for m, error in report.unlisted],
    }


def _print_report(report: CleanupReport, *, dry_run: bool) -> None:
    if report.items:
        table = Table()
        for column in ("machine", "run command", "state", "outcome", "reason"):
            table.add_column(column, no_wrap=column in ("machine", "run command"))
        for item in sorted(report.items, key=lambda i: (i.machine.name, i.found.name)):
            table.add_row(Text(inert(item.machine.name)), Text(inert(item.found.name)),
                          Text(inert(item.found.execution_state)),
                          Text(item.outcome.value, style=OUTCOME_STYLES[item.outcome]),
                          Text(inert(item.reason)))
        render.out.print(table)
    for machine, error in report.unlisted:
        render.err.print(Text(f"{inert(machine.name)}: run commands not listed: {inert(error)}",
                              style="red"))
    counts = report.counts()
    if not report.items:
        summary = f"No fleetrun run commands on {report.machines} machine(s)"
    else:
        done = (f"{counts[Outcome.WOULD_DELETE.value]} would be deleted" if dry_run
                else f"{counts[Outcome.DELETED.value]} deleted")
        summary = (f"{len(report.items)} fleetrun run command(s) on {report.machines} "
                   f"machine(s): {done}, {counts[Outcome.KEPT.value]} kept, "
                   f"{counts[Outcome.FAILED.value]} failed")
    if report.unlisted:
        summary += f"; {len(report.unlisted)} machine(s) could not be listed"
    render.err.print(summary + ("; nothing was deleted (--dry-run)" if dry_run else ""))
