"""``fleetrun commands list|show``: the saved-command library (``run --command`` runs one)."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from core.library import (
    CommandParameter,
    Library,
    LibraryError,
    SavedCommand,
    command_document,
    load_library,
)
from core.library.model import SCRIPT_KEY_FOR
from core.model import CommandId
from tui.cli import json_shapes, render
from tui.cli.builtins import add_builtin_parser, cmd_builtin
from tui.cli.errors import EXIT_OK
from tui.cli.inputs import InputError
from tui.cli.options import Parser, add_table_output

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def load(library: Library | None = None) -> Library:
    """The library, each file that did not load named on stderr (the rest is usable)."""
    library = library if library is not None else load_library()
    for problem in library.problems:
        print(f"warning: skipped saved command: {problem.message}", file=sys.stderr)
    return library


def find(library: Library, name: str, flag: str) -> SavedCommand:
    try:
        return library.get(name)
    except LibraryError as exc:
        raise InputError(f"{flag} {name}: {exc}") from None


# -- fleetrun commands ------------------------------------------------------------------------


def add_parser(sub: Subparsers) -> None:
    saved = sub.add_parser(
        "commands",
        help="the saved-command library: list, show; builtin: Azure's built-in run commands",
        description="Saved commands: the starter library shipped with fleetrun and your own "
        "TOML files in the config dir's commands/ folder (yours replace a starter command of "
        "the same name). Run one with 'fleetrun run --command NAME'.",
    )
    saved.set_defaults(handler=cmd_commands)
    saved_sub = saved.add_subparsers(
        dest="commands_action", metavar="ACTION", parser_class=Parser, required=True
    )
    saved_list = saved_sub.add_parser("list", help="every saved command, one line each")
    add_table_output(saved_list)
    saved_show = saved_sub.add_parser(
        "show", help="one saved command in full: parameters and scripts"
    )
    saved_show.add_argument("name", metavar="NAME")
    add_table_output(saved_show)
    add_builtin_parser(saved_sub)


def cmd_commands(args: Namespace) -> int:
    if args.commands_action == "builtin":
        return cmd_builtin(args)
    library = load()
    if args.commands_action == "list":
        commands = library.sorted()
        if args.output == "json":
            json_shapes.print_json([summary_json(c, library) for c in commands])
        else:
            _list_table(commands, library)
        return EXIT_OK
    saved = find(library, args.name, "commands show")
    if args.output == "json":
        json_shapes.print_json(detail_json(saved, library))
    else:
        _show(saved, library)
    return EXIT_OK


def _source(command: SavedCommand, library: Library) -> str:
    if command.builtin:
        return "starter"
    return "user (replaces a starter)" if command.name in library.overridden else "user"


def summary_json(command: SavedCommand, library: Library) -> dict[str, Any]:
    return {
        "name": command.name,
        "description": command.description,
        "os": [o.value for o in command.os_types()],
        "tags": list(command.tags),
        "dangerous": command.dangerous,
        "source": "starter" if command.builtin else "user",
        "overrides_starter": command.name in library.overridden,
        "path": str(command.path) if command.path else None,
        "parameters": [p.name for p in command.parameters],
        "timeout": command.timeout,
    }


def detail_json(command: SavedCommand, library: Library) -> dict[str, Any]:
    """Everything about a command, scripts included (its file's fields, and where it is)."""
    doc = command_document(command)
    return {
        **summary_json(command, library),
        "parameters": [_parameter_json(p) for p in command.parameters],
        "scripts": doc["scripts"],
    }


def _parameter_json(param: CommandParameter) -> dict[str, Any]:
    return {
        "name": param.name,
        "description": param.description,
        "default": param.default,
        "required": param.required,
        "protected": param.protected,
        "choices": list(param.choices),
        "pattern": param.pattern,
    }


def _shown_path(path: Path | None) -> str:
    if path is None:
        return ""
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text


def _list_table(commands: list[SavedCommand], library: Library) -> None:
    table = Table()
    for col in ("name", "os", "tags", "description", "source"):
        table.add_column(col, no_wrap=col in ("name", "os"))
    for c in commands:
        name = Text(c.name)
        if c.dangerous:
            name.append(" ⚠ dangerous", style="bold red")
        source = _source(c, library)
        if not c.builtin:
            source += f" {_shown_path(c.path)}"
        table.add_row(name, ",".join(o.value for o in c.os_types()), " ".join(c.tags),
                      Text(c.description), Text(source, style="dim"))
    render.out.print(table)
    render.out.print(Text("Azure's built-in run commands (ifconfig, IPConfig, RDPSettings, ...: "
                          "the action API, on VMs): fleetrun commands builtin", style="dim"))


def _show(command: SavedCommand, library: Library) -> None:
    write = render.out.print
    where = _source(command, library)
    if command.path is not None:
        where += f", {_shown_path(command.path)}"
    write(Text.assemble((command.name, "bold"), f"  ({where})"))
    if command.description:
        write(Text(command.description))
    timeout = "run default (3600 s)" if command.timeout is None else (
        "no limit" if command.timeout == 0 else f"{command.timeout} s")
    danger = Text("yes: it changes state; a run asks for a typed confirmation", style="bold red") \
        if command.dangerous else Text("no")
    write(Text.assemble("os: ", ", ".join(o.value for o in command.os_types()),
                        "   tags: ", " ".join(command.tags) or "-", "   timeout: ", timeout))
    write(Text.assemble("dangerous: ", danger))
    if command.parameters:
        table = Table(title="parameters", title_justify="left", box=None, padding=(0, 2))
        for col in ("name", "allowed", "default", "description"):
            table.add_column(col, overflow="fold")
        for p in command.parameters:
            flags = [f for f, on in (("required", p.required), ("protected", p.protected)) if on]
            name = Text(p.name)
            if flags:
                name.append(f" ({', '.join(flags)})", style="dim")
            table.add_row(name, Text(p.allowed()), Text(p.default), Text(p.description))
        write(table)
    for command_id in (CommandId.SHELL, CommandId.POWERSHELL):
        script = command.scripts.get(command_id)
        if script is not None:
            write(Text(f"\n{SCRIPT_KEY_FOR[command_id]} ({command_id.value}, "
                       f"{command_id.os.value}):", style="bold"))
            write(Text(script.rstrip("\n")))
    example = " ".join(f"-p {p.name}=VALUE" for p in command.parameters
                       if p.required and not p.protected)
    example += "".join(f" -P {p.name}" for p in command.parameters if p.required and p.protected)
    write(Text(f"\nrun it: fleetrun run --command {command.name} {example}".rstrip(),
               style="dim"))
