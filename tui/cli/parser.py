"""The whole ``fleetrun`` command line: its own options, then each subcommand's.

A subcommand's module (its options and its handler, with everything the handler needs) is
imported only when that subcommand is chosen: ``fleetrun --help`` lists them from
:data:`SUBCOMMANDS` alone, and ``fleetrun run`` imports what a run needs and nothing of
``azure``, ``cleanup`` or the app.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tui.cli.options import Parser, add_fleet, connect_timeout

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


class SubcommandModule(Protocol):
    """A subcommand's module: it adds its parser, which names its handler (``handler``)."""

    def add_parser(self, sub: Subparsers) -> None: ...


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A subcommand as ``fleetrun --help`` lists it, and the module that defines it."""

    name: str
    module: str
    help: str
    """The module's own one-line help (a unit test holds the two equal)."""


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("run", "tui.cli.run", "run a script on many machines"),
    Subcommand("attach", "tui.cli.attach",
               "follow an Azure run again after fleetrun stopped (crash, kill, reboot)"),
    Subcommand("history", "tui.cli.history", "list past runs"),
    Subcommand("show", "tui.cli.show", "show a past run, or one machine's output"),
    Subcommand("export", "tui.cli.export",
               "write a past run as JSON, CSV or a Markdown incident report"),
    Subcommand("cleanup", "tui.cli.cleanup",
               "delete the run commands fleetrun left on Azure VMs and Arc servers"),
    Subcommand("commands", "tui.cli.commands",
               "the saved-command library: list, show; builtin: Azure's built-in run commands"),
    Subcommand("machines", "tui.cli.machines", "list machines and their health"),
    Subcommand("hostkeys", "tui.cli.hostkeys",
               "SSH host keys: scan and review fingerprints, then trust exactly those"),
    Subcommand("sandbox", "tui.cli.sandbox", "the built-in emulated Azure fleet"),
    Subcommand("azure", "tui.cli.azure", "set up Azure for fleetrun (output storage)"),
)
"""In the order ``fleetrun --help`` lists them."""


class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subparsers holding only a name and a line of help until one is chosen; the chosen
    one's module then replaces its stand-in with the full parser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._modules: dict[str, str] = {}

    def add_deferred(self, subcommand: Subcommand) -> None:
        self.add_parser(subcommand.name, help=subcommand.help)
        self._modules[subcommand.name] = subcommand.module

    def load(self, name: str) -> argparse.ArgumentParser:
        """The subcommand's full parser, its module imported on first use."""
        module = self._modules.pop(name, None)
        if module is not None:
            place = [a.dest for a in self._choices_actions].index(name)
            del self._name_parser_map[name]
            subcommand: SubcommandModule = importlib.import_module(module)
            subcommand.add_parser(self)
            # The module's own help line replaces the stand-in's, where that was listed.
            self._choices_actions[place] = self._choices_actions.pop()
        parser: argparse.ArgumentParser = self._name_parser_map[name]
        return parser

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        if isinstance(values, Sequence) and values and values[0] in self._modules:
            self.load(str(values[0]))
        super().__call__(parser, namespace, values, option_string)


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
    parser.register("action", "parsers", _Subcommands)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    assert isinstance(sub, _Subcommands)
    for subcommand in SUBCOMMANDS:
        sub.add_deferred(subcommand)
    return parser


def subcommand_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The full parser of subcommand ``name`` of :func:`build_parser`'s ``parser``."""
    [sub] = [a for a in parser._actions if isinstance(a, _Subcommands)]
    return sub.load(name)
