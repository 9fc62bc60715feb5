"""The whole ``fleetrun`` command line: its own options, then each subcommand's."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Protocol

from tui.cli import (
    attach,
    azure,
    cleanup,
    commands,
    export,
    history,
    hostkeys,
    machines,
    run,
    sandbox,
    show,
)
from tui.cli.options import Parser, add_fleet, connect_timeout

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


class Subcommand(Protocol):
    """A subcommand's module: it adds its parser, which names its handler (``handler``)."""

    def add_parser(self, sub: Subparsers) -> None: ...


SUBCOMMANDS: tuple[Subcommand, ...] = (
    run, attach, history, show, export, cleanup, commands, machines, hostkeys, sandbox, azure
)
"""In the order ``fleetrun --help`` lists them."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="fleetrun",
        description="Run shell and PowerShell commands across a fleet of machines.",
        epilog="Run 'fleetrun COMMAND --help' for a command's options.",
    )
    add_fleet(parser, "with no COMMAND: open the app on these machines (repeatable; as 'run "
              "--fleet'); default: config.toml's fleet, else azure when [azure] is set, else "
              "the sandbox")
    parser.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="with no COMMAND: trust SSH host keys known_hosts does not have yet (written to it)",
    )
    parser.add_argument("--connect-timeout", type=connect_timeout, default=None, metavar="S",
                        help="with no COMMAND: seconds each SSH host gets to connect and log in")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for subcommand in SUBCOMMANDS:
        subcommand.add_parser(sub)
    return parser
