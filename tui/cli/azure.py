"""``fleetrun azure setup-output``: output storage without homework."""

from __future__ import annotations

import asyncio
import os
import sys
from argparse import Namespace
from typing import TYPE_CHECKING

from core.azure.arm import ArmClient
from core.azure.auth import IdentityTokens, StaticToken, TokenSource
from core.azure.output_storage import (
    DEFAULT_CONTAINER,
    ROLES,
    SetupResult,
    record_output,
    setup_output,
)
from core.azure.settings import (
    CONFIG_FILE,
    OUTPUT_CONTAINER_ENV,
    load_azure_settings,
    sandbox_token,
)
from core.config import config_dir
from tui.cli.errors import EXIT_OK

if TYPE_CHECKING:
    from tui.cli.options import Subparsers


def add_parser(sub: Subparsers) -> None:
    azure = sub.add_parser("azure", help="set up Azure for fleetrun (output storage)")
    verbs = azure.add_subparsers(dest="azure_command", metavar="ACTION", required=True)
    setup = verbs.add_parser(
        "setup-output",
        help="create (or reuse) a blob container for full output and record it in config.toml",
        description="Find the storage account through ARM, create or reuse its container, and "
        "record it in config.toml's [azure] table (output_mode = \"user-delegation\"): each run "
        "then signs its own per-blob SAS with your Entra login. " + ROLES)
    setup.set_defaults(handler=cmd_setup_output)
    setup.add_argument("--account", required=True, metavar="NAME",
                       help="the storage account's name")
    setup.add_argument("--resource-group", metavar="RG",
                       help="look for the account in this resource group only")
    setup.add_argument("--container", default=DEFAULT_CONTAINER, metavar="C",
                       help=f"the container (default {DEFAULT_CONTAINER}; created if missing)")


def cmd_setup_output(args: Namespace) -> int:
    settings = load_azure_settings()
    credential: TokenSource = (StaticToken(sandbox_token(os.environ))
                               if settings.credential == "sandbox" else IdentityTokens())

    def progress(line: str) -> None:
        print(f"… {line}", file=sys.stderr, flush=True)

    async def setup() -> SetupResult:
        arm = ArmClient(settings.arm_endpoint, credential, api_versions=settings.api_versions)
        try:
            return await setup_output(
                arm, settings.subscriptions, args.account, resource_group=args.resource_group,
                container=args.container, progress=progress)
        finally:
            await arm.aclose()

    result = asyncio.run(setup())
    verb = "created" if result.created else "reused the existing"
    print(f"✓ {verb} container {result.container} in {result.account.name}")
    path = config_dir() / CONFIG_FILE
    record_output(path, result.container_url)
    print(f"✓ recorded in {path}: [azure] output_container = \"{result.container_url}\", "
          "output_mode = \"user-delegation\"")
    if os.environ.get(OUTPUT_CONTAINER_ENV, "").strip():
        print(f"! ${OUTPUT_CONTAINER_ENV} is set and overrides output_container; unset it to "
              "use this container", file=sys.stderr)
    print(ROLES)
    return EXIT_OK
