"""``fleetrun run --command``: a saved command's scripts, with the flags applied."""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace
from dataclasses import replace
from typing import TYPE_CHECKING

from core.model import Command, CommandId, Machine
from tui.cli.inputs import SECRET_ENV_PREFIX, InputError, read_secret, run_as_from, timeout_from

if TYPE_CHECKING:
    from core.library import SavedCommand  # the library itself: --command only


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
    # Deferred: the library's listing (rich tables, Azure's built-ins) is for --command only.
    from tui.cli.commands import find, load

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
    by_os: dict[str, int] = {}
    for machine in runnable:
        by_os[machine.os.value] = by_os.get(machine.os.value, 0) + 1
    spread = ", ".join(f"{n} {os_name}" for os_name, n in sorted(by_os.items()))
    by_health: dict[str, int] = {}
    for machine, _ in pairs:
        if not machine.health.runnable:
            status = machine.health.status.value
            by_health[status] = by_health.get(status, 0) + 1
    why = ", ".join(f"{n} {status}" for status, n in sorted(by_health.items()))
    skipped = len(pairs) - count
    where = f"{count} machine(s) ({spread})" + (
        f"; {skipped} more will be skipped ({why})" if skipped else "")
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
