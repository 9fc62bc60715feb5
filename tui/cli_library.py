"""Saved commands on the command line: ``fleetrun commands list|show`` and ``run --command``."""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace
from dataclasses import replace
from pathlib import Path
from typing import Any

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
from core.model import Command, CommandId, Machine
from tui import cli_render as render
from tui.cli import EXIT_OK
from tui.cli_input import SECRET_ENV_PREFIX, InputError, read_secret, run_as_from, timeout_from


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


def cmd_commands(args: Namespace) -> int:
    library = load()
    if args.commands_action == "list":
        commands = library.sorted()
        if args.output == "json":
            render.print_json([summary_json(c, library) for c in commands])
        else:
            _list_table(commands, library)
        return EXIT_OK
    saved = find(library, args.name, "commands show")
    if args.output == "json":
        render.print_json(detail_json(saved, library))
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


# -- fleetrun run --command ---------------------------------------------------------------------


def values_from(args: Namespace, saved: SavedCommand, *, interactive: bool
                ) -> tuple[dict[str, str], set[str]]:
    """The parameter values -p, -a and -P give, plus secrets read for required protected ones.

    ``-a`` values fill, in order, the table's public parameters no ``-p`` named.

    Returns:
        The values by name, and the names whose values are protected.
    """
    values: dict[str, str] = {}
    for raw in args.param:
        name, sep, value = raw.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"-p {raw!r}: expected NAME=VALUE")
        param = saved.parameter(name)
        if param is not None and param.protected:
            raise InputError(f"-p {name}: {name!r} is a protected parameter of {saved.name}; "
                             f"give it with -P {name} (read without echo, or from "
                             f"${SECRET_ENV_PREFIX}{name})")
        values[name] = value
    open_slots = [p.name for p in saved.parameters if not p.protected and p.name not in values]
    if len(args.arg) > len(open_slots):
        takes = ", ".join(open_slots) or "none"
        raise InputError(f"-a: {len(args.arg)} value(s) given but {saved.name} has "
                         f"{len(open_slots)} parameter(s) left to fill ({takes}); "
                         "use -p NAME=VALUE")
    values.update(zip(open_slots, args.arg, strict=False))
    protected = set(args.protected)
    for name in args.protected:
        param = saved.parameter(name)
        if param is None or not param.protected:
            what = "not a parameter" if param is None else "not a protected parameter"
            raise InputError(f"-P {name}: {what} of {saved.name}"
                             + ("; give it with -p NAME=VALUE" if param is not None else ""))
    # A required secret not named with -P is asked for all the same (never read from argv).
    protected |= {p.name for p in saved.parameters if p.protected and p.required}
    for name in sorted(protected, key=lambda n: [p.name for p in saved.parameters].index(n)):
        values[name] = read_secret(name, SECRET_ENV_PREFIX + name, interactive=interactive)
    return values, protected


def commands_from_library(args: Namespace) -> tuple[dict[CommandId, Command], SavedCommand]:
    """One command per OS the saved command has a script for, with the flags applied."""
    if args.shell or args.powershell:
        raise InputError("--command: the scripts come from the saved command; "
                         "leave out --shell/--powershell (or leave out --command)")
    saved = find(load(), args.saved_command, "--command")
    interactive = sys.stdin.isatty()
    values, _ = values_from(args, saved, interactive=interactive)
    problems = saved.check_values(values)
    if problems:
        raise InputError("\n".join(f"--command {saved.name}: {p}" for p in problems))
    user, password = run_as_from(args, interactive=interactive)
    commands: dict[CommandId, Command] = {}
    for command_id in saved.scripts:
        command = saved.command_for(command_id, values)
        if args.timeout is not None:
            command = replace(command, timeout=timeout_from(args.timeout))
        commands[command_id] = replace(command, run_as_user=user, run_as_password=password,
                                       script_path=f"saved command {saved.name}")
    return commands, saved


async def confirm_dangerous(saved: SavedCommand, pairs: list[tuple[Machine, Command]], *,
                            yes: bool) -> None:
    """A dangerous command runs only after ``--yes`` or the target count typed on a terminal.

    Raises:
        InputError: no terminal and no --yes, or the answer was not the count.
    """
    runnable = [m for m, _ in pairs if m.health.runnable]
    count = len(runnable)
    if count == 0:
        return  # every machine will be skipped: nothing changes anywhere
    skipped = len(pairs) - count
    by_os: dict[str, int] = {}
    for machine in runnable:
        by_os[machine.os.value] = by_os.get(machine.os.value, 0) + 1
    spread = ", ".join(f"{n} {os_name}" for os_name, n in sorted(by_os.items()))
    where = f"{count} machine(s) ({spread})" + (
        f"; {skipped} more are not ready and will be skipped" if skipped else "")
    if yes:
        print(f"--yes: running dangerous command {saved.name} on {where}", file=sys.stderr)
        return
    if not sys.stdin.isatty():
        raise InputError(f"--command {saved.name}: it is dangerous (it changes state) and would "
                         f"run on {where}; there is no terminal to confirm on: add --yes")
    sys.stderr.write(f"{saved.name} is dangerous: it changes state on every machine it runs "
                     f"on.\nIt would run on {where}.\nType {count} to run it (anything else "
                     "stops): ")
    sys.stderr.flush()
    answer = await asyncio.to_thread(sys.stdin.readline)
    if answer.strip() != str(count):
        raise InputError(f"--command {saved.name}: not confirmed (expected {count}); "
                         "nothing was run")
