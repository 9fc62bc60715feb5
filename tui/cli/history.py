"""``fleetrun history``: the past runs, newest first."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING

from core import config
from core.journal_store import Journal
from core.model import utc_now
from core.run_record import listed_run_record
from core.run_search import DATE_RULE, RunFilter, parse_bound
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_OK
from tui.cli.inputs import InputError
from tui.cli.options import add_table_output

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    hist = sub.add_parser("history", help="list past runs")
    hist.set_defaults(handler=cmd_history)
    hist.add_argument("--limit", type=int, default=50, metavar="N")
    hist.add_argument("--grep", default="", metavar="TEXT",
                      help="only runs with TEXT (any case) in the saved command's name, a "
                      "script, the target, the fleet, the status, or a machine's name or state")
    hist.add_argument("--since", default="", metavar="WHEN",
                      help=f"only runs created then or later: {DATE_RULE}")
    hist.add_argument("--until", default="", metavar="WHEN",
                      help="only runs created before then (a bare date includes that day)")
    add_table_output(hist)


def cmd_history(args: Namespace) -> int:
    if not 1 <= args.limit <= 1_000_000:  # SQLite takes 64-bit integers, no more
        raise InputError(f"--limit: {args.limit} is not allowed; use 1 to 1000000")
    now = utc_now()
    where = RunFilter(
        text=args.grep,
        since=parse_bound(args.since, field="--since", now=now) if args.since else None,
        until=parse_bound(args.until, field="--until", now=now, end=True) if args.until else None,
    )
    runs = Journal(config.journal_path()).list_runs(limit=args.limit, where=where)
    if args.output == "json":
        json_shapes.print_json([listed_run_record(r) for r in runs])
    else:
        render.history_table(runs)
    return EXIT_OK
