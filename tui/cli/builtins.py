"""Built-in run command ids on the CLI: ``fleetrun commands builtin`` lists them per OS with
their parameters (from the fleet's regions), ``fleetrun run --builtin ID`` runs one.

A built-in runs through the action API, on Azure VMs of its OS only; the other machines of
the selection are left out, saying why.
"""

from __future__ import annotations

import asyncio
import sys
from argparse import Namespace
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from core.azure.action_commands import BuiltinCommand, InvalidActionResult
from core.azure.arm import ArmError
from core.backends.compute import ComputeBackend
from core.fleet import Fleet
from core.model import Command, CommandId, Machine, MachineKind, Parameter, RunApi
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_OK
from tui.cli.fleets import open_named, select
from tui.cli.inputs import InputError, parameters_from, timeout_from
from tui.cli.options import add_fleet, add_table_output

if TYPE_CHECKING:
    import argparse


def add_builtin_parser(saved_sub: argparse._SubParsersAction[Any]) -> None:
    listing = saved_sub.add_parser(
        "builtin", help="the built-in run command ids of the fleet's Azure regions, per OS",
        description="Built-in run commands (ifconfig, IPConfig, RDPSettings, ...) that the "
        "fleet's Azure VM regions list, with their parameters. Run one with 'fleetrun run "
        "--builtin ID -p NAME=VALUE'; it goes through the action API, on VMs of its OS.")
    add_fleet(listing, "whose VMs' regions to ask (default: the default fleet)")
    listing.add_argument("--target", default="", metavar="QUERY")
    add_table_output(listing)


async def catalog_of(fleet: Fleet, machines: list[Machine]) -> list[BuiltinCommand]:
    """The built-ins the machines' VM regions list (none without VMs)."""
    vms = [m for m in machines if m.kind is MachineKind.VM]
    backend = fleet.backends.get(MachineKind.VM)
    if not vms or not isinstance(backend, ComputeBackend):
        return []
    try:
        return await backend.builtins.for_machines(vms)
    except (ArmError, InvalidActionResult) as exc:
        raise InputError(f"built-in run commands could not be listed: {exc}") from None


def cmd_builtin(args: Namespace) -> int:
    async def listing() -> list[BuiltinCommand]:
        fleet = await open_named(args)
        try:
            return await catalog_of(fleet, await select(args, fleet))
        finally:
            await fleet.aclose()

    commands = asyncio.run(listing())
    if args.output == "json":
        json_shapes.print_json([builtin_json(c) for c in commands])
        return EXIT_OK
    if not commands:
        print(f"no built-in run commands: {', '.join(args.fleet)} has no Azure VMs",
              file=sys.stderr)
        return EXIT_OK
    table = Table()
    for column in ("os", "id", "label", "parameters"):
        table.add_column(column, no_wrap=column in ("os", "id"))
    for command in commands:
        table.add_row(command.os.value, command.id, Text(command.label),
                      Text(_parameters_text(command)))
    render.out.print(table)
    render.out.print(Text("run one: fleetrun run --builtin ID -p NAME=VALUE (action API, on "
                          "VMs of its OS)", style="dim"))
    return EXIT_OK


def builtin_json(command: BuiltinCommand) -> dict[str, Any]:
    return {"id": command.id, "os": command.os.value, "label": command.label,
            "description": command.description,
            "parameters": [{"name": p.name, "type": p.type, "default": p.default,
                            "required": p.required} for p in command.parameters]}


def _parameters_text(command: BuiltinCommand) -> str:
    shown = []
    for p in command.parameters:
        text = p.name + (" (required)" if p.required else "")
        if p.default is not None:
            text += f" = {p.default!r}"
        shown.append(text)
    return ", ".join(shown) or "-"


async def builtin_run(
    args: Namespace, fleet: Fleet, selected: list[Machine]
) -> tuple[list[Machine], Command]:
    """The machines that can run ``--builtin ID`` and its command; the rest are named on
    stderr as left out.

    Raises:
        InputError: the id is not listed in the machines' regions, or a parameter is not
            one of its own.
    """
    offered = await catalog_of(fleet, selected)
    wanted = args.builtin.lower()
    found = next((c for c in offered if c.id.lower() == wanted), None)
    if found is None:
        ids = ", ".join(c.id for c in offered) or "none: the selection has no Azure VMs"
        raise InputError(f"--builtin {args.builtin}: not a built-in run command of the "
                         f"selected VMs' regions (they offer: {ids})")
    parameters = parameters_from(args, interactive=sys.stdin.isatty())
    _check_parameters(found, parameters)
    keep = [m for m in selected if m.kind is MachineKind.VM and m.os is found.os]
    left = len(selected) - len(keep)
    if left:
        print(f"--builtin {found.id}: {left} machine(s) left out: it is a "
              f"{found.os.value.capitalize()} built-in, run through the action API, which only "
              f"Azure VMs of that OS have", file=sys.stderr)
    if not keep:
        raise InputError(f"--builtin {found.id}: no {found.os.value} Azure VM is selected")
    timeout = timeout_from(args.timeout) if args.timeout is not None else 3600
    command = Command(CommandId.for_os(found.os), "", parameters=parameters, timeout=timeout,
                      api=RunApi.ACTION, builtin=found.id)
    return keep, command


def _check_parameters(command: BuiltinCommand, given: tuple[Parameter, ...]) -> None:
    names = {p.name.lower(): p for p in command.parameters}
    for parameter in given:
        if not parameter.name:
            raise InputError(f"-a {parameter.value!r}: a built-in takes named parameters "
                             f"only (-p NAME=VALUE; {command.id} has: "
                             f"{', '.join(names) or 'none'})")
        if parameter.name.lower() not in names:
            raise InputError(f"-p {parameter.name}: not a parameter of {command.id} "
                             f"(it has: {', '.join(p.name for p in command.parameters) or 'none'})")
    named = {p.name.lower() for p in given}
    missing = [p.name for p in command.parameters if p.required and p.name.lower() not in named]
    if missing:
        raise InputError(f"--builtin {command.id}: required parameter(s) missing: "
                         f"{', '.join(missing)} (-p NAME=VALUE)")
