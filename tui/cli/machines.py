"""``fleetrun machines``: the fleet's machines and their health."""

from __future__ import annotations

import asyncio
from argparse import Namespace
from typing import TYPE_CHECKING

from core.model import Machine
from tui.cli import json_shapes, render
from tui.cli.errors import EXIT_OK
from tui.cli.fleets import (
    open_named,
    report_host_key_warnings,
    report_host_keys,
    select,
    with_health,
)
from tui.cli.options import add_fleet, add_hosts, add_ssh_options, add_table_output

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    mach = sub.add_parser("machines", help="list machines and their health")
    mach.set_defaults(handler=cmd_machines)
    add_fleet(mach, "sandbox (the default), sandbox:FILE, local (repeatable)")
    mach.add_argument("--target", default="", metavar="QUERY")
    add_ssh_options(mach)
    add_hosts(mach)
    mach.add_argument(
        "--no-check",
        action="store_true",
        help="list what the inventory says without contacting any machine (no health checks)",
    )
    add_table_output(mach)


def cmd_machines(args: Namespace) -> int:
    async def listing() -> list[Machine]:
        fleet = await open_named(args)
        try:
            selected = await select(args, fleet)
            if args.no_check:
                return selected
            checked = await with_health(fleet.backends, selected)
            report_host_keys(fleet)
            report_host_key_warnings(fleet)
            return checked
        finally:
            await fleet.aclose()

    machines = asyncio.run(listing())
    if args.output == "json":
        json_shapes.print_json([json_shapes.machine_json(m) for m in machines])
    else:
        render.machines_table(machines)
    return EXIT_OK
