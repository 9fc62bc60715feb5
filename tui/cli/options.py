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


def add_hosts(parser: argparse.ArgumentParser) -> None:
    """``--hosts`` (ad-hoc SSH hosts, as ``--fleet ssh:HOSTS``) and their login defaults."""
    parser.add_argument(
        "--hosts",
        metavar="NODESET",
        help="SSH hosts without an inventory: a node set of [user@]host[:port] such as "
        "'web[01-20].prod,db-[1-3]:2222' (ranges, lists, ! & ^ as clush); same as "
        "--fleet ssh:NODESET",
    )
    parser.add_argument("-l", "--login", default="", metavar="USER",
                        help="login name for --hosts / ssh: hosts that name none")
    parser.add_argument("-i", "--identity", default="", metavar="KEY",
                        help="private key for --hosts / ssh: hosts")
    parser.add_argument("--port", default=None, metavar="PORT",
                        help="port for --hosts / ssh: hosts that name none (-p is a "
                        "script parameter)")


def add_accept_new_host_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust SSH host keys known_hosts does not have yet, and record them "
        "(a changed key is always refused)",
    )


def connect_timeout(text: str) -> float:
    """``--connect-timeout``'s value: seconds, more than 0."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 3600:  # NaN and inf fail this too
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from more than 0 to 3600")
    return seconds


def add_ssh_options(parser: argparse.ArgumentParser) -> None:
    """The SSH options of a command that opens a fleet: host keys, connect timeout."""
    add_accept_new_host_keys(parser)
    parser.add_argument(
        "--connect-timeout",
        type=connect_timeout,
        default=None,
        metavar="S",
        help="seconds each SSH host (and bastion) gets to connect and log in; default: the "
        "ssh config's ConnectTimeout, else 15",
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
