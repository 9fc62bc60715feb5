"""``fleetrun sandbox``: the built-in emulated Azure fleet, served to any ARM client."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING

from tui.cli.options import Parser

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    sandbox = sub.add_parser("sandbox", help="the built-in emulated Azure fleet")
    sandbox.set_defaults(handler=cmd_sandbox)
    sandbox_sub = sandbox.add_subparsers(
        dest="sandbox_command", metavar="ACTION", parser_class=Parser, required=True
    )
    serve = sandbox_sub.add_parser(
        "serve",
        help="serve the Azure Run Command emulator on 127.0.0.1 for any ARM client",
        description="Serve the sandbox's ARM (Compute, HybridCompute, Resource Graph) and "
        "append-blob endpoints on 127.0.0.1 until Ctrl-C. ARM calls must present the bearer "
        "token in $FLEETRUN_SANDBOX_TOKEN, or, when it is unset, the one it generates and "
        "prints.",
    )
    serve.add_argument("--fleet", metavar="FILE", help="a fleet file (default: the demo fleet)")
    serve.add_argument(
        "--port", type=int, default=8765, metavar="N", help="port (default 8765; 0 = any free)"
    )
    serve.add_argument(
        "--tls", action="store_true", help="HTTPS with a self-signed certificate it generates"
    )


def cmd_sandbox(args: Namespace) -> int:
    from tui.cli.sandbox_serve import serve  # deferred: uvicorn loads only to serve

    return serve(args)
