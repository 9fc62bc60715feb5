"""``fleetrun export``: a past run as JSON, CSV or a Markdown incident report."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING

from core import config
from core.journal_store import Journal
from core.run_export import ExportError, parse_format, render_view, write_view
from core.run_view import RunView
from tui.cli.errors import EXIT_OK
from tui.cli.inputs import InputError
from tui.cli.options import add_run_id

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    export = sub.add_parser(
        "export",
        help="write a past run as JSON, CSV or a Markdown incident report",
        description="Write RUN out for others: JSON (the run and every machine with its "
        "output tails), CSV (a row per machine) or a Markdown incident report (what ran, "
        "when, where, counts, groups of identical output, the machines that failed). "
        "Protected parameter values are never written.",
    )
    export.set_defaults(handler=cmd_export)
    add_run_id(export)
    export.add_argument(
        "--format", choices=("json", "csv", "md"), default="md", help="default md"
    )
    export.add_argument(
        "-o", "--output", default=None, metavar="FILE", help="write to FILE (default: stdout)"
    )


def cmd_export(args: Namespace) -> int:
    record = Journal(config.journal_path()).get_run(args.run_id)
    view = RunView.from_journal(record)
    fmt = parse_format(args.format)
    if args.output is None:
        sys.stdout.write(render_view(view, fmt))
        return EXIT_OK
    try:
        path = write_view(view, fmt, Path(args.output))
    except ExportError as exc:
        raise InputError(f"-o: {exc}") from None
    print(f"wrote {path}", file=sys.stderr)
    return EXIT_OK
