"""The parser class every subcommand uses, and the options several of them share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

from tui.cli.errors import UsageError

OUTPUT_FORMATS = ("table", "json", "jsonl")

RUN_ID_HELP = "run id (or a unique prefix)"


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`UsageError` (exit 2, one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[Parser]
    """What ``add_subparsers`` returns: each subcommand module adds its parser to it."""


def add_fleet(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("--fleet", action="append", metavar="SOURCE", help=help_text)


def add_accept_new_host_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust SSH host keys known_hosts does not have yet, and record them "
        "(a changed key is always refused)",
    )


def add_run_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_id", metavar="RUN", help=RUN_ID_HELP)


def add_event_output(parser: argparse.ArgumentParser, *, lines: bool = False) -> None:
    """``-o`` of a command that follows a run: a table, one JSON document, or JSON lines;
    with ``lines``, also ``machine: line`` as output arrives."""
    parser.add_argument(
        "-o",
        "--output",
        choices=(*OUTPUT_FORMATS, "lines") if lines else OUTPUT_FORMATS,
        default=None,
        help="table (default on a terminal), json, or jsonl events"
        + (", or lines: 'machine: line' as each line arrives (stderr's to stderr)"
           if lines else ""),
    )


def add_table_output(parser: argparse.ArgumentParser) -> None:
    """``-o`` of a command that prints what is known: a table or JSON."""
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
