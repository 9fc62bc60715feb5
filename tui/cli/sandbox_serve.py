"""``fleetrun sandbox serve`` at work: the emulated Azure Run Command service for any client.

Imported only to serve (:mod:`tui.cli.sandbox` defers it): it loads the sandbox and uvicorn.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from argparse import Namespace
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core import config
from core.azure.settings import SANDBOX_TOKEN_ENV, SettingsError, checked_sandbox_token
from core.sandbox.access import check_principals
from core.sandbox.fleet import FleetFileError, FleetSpec, default_fleet, load_fleet
from core.sandbox.sas import sign_container_sas
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService
from core.sandbox.tls import ensure_certificate
from tui.cli.errors import EXIT_OK, UsageError

SAS_HOURS = 24


def serve(args: Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port: {args.port} is not allowed; use 0 (any free port) to 65535")
    try:
        fleet = load_fleet(Path(args.fleet)) if args.fleet else default_fleet()
    except FleetFileError as exc:
        raise UsageError(f"--fleet: {exc}") from None
    chosen = os.environ.get(SANDBOX_TOKEN_ENV, "")
    try:
        token = checked_sandbox_token(chosen) if chosen.strip() else None
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if token is not None:
        try:
            check_principals(token, {p.name: p.token for p in fleet.principals})
        except ValueError as exc:  # names the principal, never the token
            raise UsageError(f"{SANDBOX_TOKEN_ENV}: {exc}") from None
    try:
        asyncio.run(_serve(fleet, args.port, args.tls, token))
    except KeyboardInterrupt:
        pass
    print("sandbox stopped", file=sys.stderr)
    return EXIT_OK


async def _serve(fleet: FleetSpec, port: int, tls: bool, token: str | None) -> None:
    """Serve until stopped; ``token`` None makes a random one, printed for the operator."""
    files = ensure_certificate(config.data_dir() / "sandbox-tls") if tls else None
    service = SandboxService(fleet)
    try:
        server = SandboxServer(service, token=token, port=port, tls=files)
    except OSError as exc:
        await service.aclose()
        raise UsageError(f"--port: cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    try:
        base = await server.start()
        # SIGTERM (systemd, `timeout`, a supervisor) ends it as cleanly as Ctrl-C: scripts
        # killed, the sandbox's directory removed.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.request_stop)
        generated = server.token if token is None else None
        print(describe(fleet, base, files.certificate if files else None,
                       generated_token=generated), flush=True)
        await server.wait()
    finally:
        await server.stop()
        await service.aclose()


def describe(
    fleet: FleetSpec, base: str, certificate: Path | None, *, generated_token: str | None
) -> str:
    """What ``sandbox serve`` prints: where it listens, what it holds, how to use it.

    A token the sandbox made up (``generated_token``) is printed once, as the line that
    exports it; one taken from ``$FLEETRUN_SANDBOX_TOKEN`` is never echoed.
    """
    kinds = Counter((m.kind, m.os) for m in fleet.machines)
    per_sub = Counter(m.subscription for m in fleet.machines)
    container = fleet.containers[0]
    expiry = datetime.now(UTC) + timedelta(hours=SAS_HOURS)
    sas = sign_container_sas(fleet.account, fleet.account_key, container, "racwl", expiry)
    vm = next((m for m in fleet.machines if m.kind == "vm" and not m.uniform), fleet.machines[0])
    curl_tls = f" --cacert {certificate}" if certificate else ""
    vm_path = (f"{base}/subscriptions/{vm.subscription}/resourceGroups/{vm.resource_group}"
               f"/providers/Microsoft.Compute/virtualMachines/{vm.name}")
    lines = [
        f"fleetrun sandbox: {len(fleet.machines)} machines "
        f"({kinds[('vm', 'linux')]} Linux VMs, {kinds[('vm', 'windows')]} Windows VMs, "
        f"{kinds[('arc', 'linux')]} Linux Arc, {kinds[('arc', 'windows')]} Windows Arc)",
        *([f"  of the VMs, {instances} are instances of {len(fleet.scale_sets)} scale set(s)"]
          if (instances := sum(1 for m in fleet.machines if m.scale_set)) else []),
        "",
        f"  ARM base URL     {base}",
        *_token_lines(generated_token),
        *(f"  subscription     {sub}  ({n} machines)" for sub, n in sorted(per_sub.items())),
        f"  blob storage     {base}/{fleet.account}  (path style, like Azurite)",
        f"  account key      {fleet.account_key}",
        f"  container SAS    {base}/{fleet.account}/{container}?{sas}",
        f"                   (racwl, valid {SAS_HOURS} h; put a blob name after the container)",
    ]
    if certificate:
        lines.append(f"  TLS certificate  {certificate}  (self-signed; trust it in your client)")
    lines += [
        "",
        "Point another fleetrun process (--fleet azure) at it with this in config.toml and",
        f"${SANDBOX_TOKEN_ENV} set to the bearer token:",
        "  [azure]",
        f'  arm_endpoint = "{base}"',
        '  credential = "sandbox"',
        f'  output_container = "{base}/{fleet.account}/{container}?{sas}"',
        "",
        "Point an ARM client at the base URL instead of https://management.azure.com;",
        "api-versions: Compute 2020-06-01 .. 2026-04-01, HybridCompute 2024-07-10 .. 2026-09-01,",
        "Resource Graph 2019-04-01 .. 2024-04-01.",
        "",
        "Try:",
        f"  curl -s{curl_tls} -H \"Authorization: Bearer ${SANDBOX_TOKEN_ENV}\" \\",
        f"    '{vm_path}?api-version=2025-04-01&$expand=instanceView'",
        "",
        "Ctrl-C stops the sandbox.",
    ]
    return "\n".join(lines)


def _token_lines(generated: str | None) -> list[str]:
    if generated is None:
        return [f"  bearer token     from ${SANDBOX_TOKEN_ENV}; ARM calls must present it"]
    return [
        "  bearer token     generated for this run; ARM calls must present it. Where clients run:",
        f"                   export {SANDBOX_TOKEN_ENV}={generated}",
    ]
