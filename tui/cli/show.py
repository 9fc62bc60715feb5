"""``fleetrun show``: a past run, or one machine's output in it."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING

from core import config
from core.journal_store import Journal
from core.run_record import machine_record, run_record
from core.run_view import RunView
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_OK
from tui.cli.inputs import InputError
from tui.cli.options import add_run_id, add_table_output

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    show = sub.add_parser("show", help="show a past run, or one machine's output")
    show.set_defaults(handler=cmd_show)
    add_run_id(show)
    show.add_argument("machine", nargs="?", metavar="MACHINE", help="machine name or id")
    show.add_argument("--full", action="store_true", help="the full output, not the 4 KB tail")
    show.add_argument(
        "--stream", choices=("stdout", "stderr"), default=None, help="with --full: only this stream"
    )
    show.add_argument(
        "--raw",
        action="store_true",
        help="with --full: the bytes as stored even on a terminal (escape sequences and all); "
        "by default a terminal gets them shown, not obeyed",
    )
    add_table_output(show)


def cmd_show(args: Namespace) -> int:
    record = Journal(config.journal_path()).get_run(args.run_id)
    if args.machine is None:
        if args.full:
            raise InputError("--full: name a MACHINE to show its full output")
        if args.output == "json":
            json_shapes.print_json(run_record(RunView.from_journal(record)))
        else:
            render.show_run(record)
        return EXIT_OK
    machine = render.find_machine(record, args.machine)
    if args.output == "json":
        view = RunView.from_journal(record)
        json_shapes.print_json(machine_record(view, view.run.machines[machine.machine_id],
                                              full_output=args.full))
    elif args.full:
        render.print_full_output(machine, args.stream, raw=args.raw)
    else:
        render.show_machine(record, machine)
    return EXIT_OK
