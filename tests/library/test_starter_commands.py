"""The starter library: it loads cleanly, and every shell command succeeds on the sandbox.

The shell scripts run for real: the sandbox's Linux machines are bash processes on this
machine, reached through the Azure clients over loopback, as any run is. Endpoints are
local servers on 127.0.0.1 (TCP, HTTP, TLS) and names resolve as ``localhost``: nothing
dials out. Dangerous commands run as dry runs (they would change this machine).
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.fanout import FanoutOptions
from core.fleet import FleetOptions, open_fleet
from core.library import Library, load_library
from core.model import CommandId, RunState
from core.runner import RunSession
from core.sandbox.tls import ensure_certificate
from core.validate import Limit


@pytest.fixture(scope="module")
def starter() -> Library:
    return load_library(Path("/nonexistent/fleetrun-test-user-dir"))


def test_the_starter_library_loads_cleanly_and_is_big_enough(starter: Library) -> None:
    assert starter.problems == []
    commands = starter.commands.values()
    assert len(starter.commands) >= 20
    assert all(c.builtin and c.description and c.tags for c in commands)
    both = [c.name for c in commands if set(c.scripts) == {CommandId.SHELL, CommandId.POWERSHELL}]
    assert len(both) >= 20, "most starter commands serve Linux and Windows"
    assert {"firewall-allow-outbound", "restart-service"} <= {
        c.name for c in commands if c.dangerous}


def test_every_dangerous_starter_command_can_dry_run(starter: Library) -> None:
    """A dangerous command must be testable here without changing this machine."""
    for command in starter.commands.values():
        if command.dangerous:
            dry_run = command.parameter("dry_run")
            assert dry_run is not None, command.name
            assert dry_run.choices == ("no", "yes"), command.name


@dataclass(frozen=True)
class Endpoints:
    """Servers on 127.0.0.1 for the probes to reach."""

    tcp_port: int
    http_port: int
    tls_port: int


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        return


def _serve_tls(listener: socket.socket, context: ssl.SSLContext) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed: the test is over
        try:
            with context.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            conn.close()


@pytest.fixture
def endpoints(tmp_path: Path) -> Iterator[Endpoints]:
    tcp = socket.create_server(("127.0.0.1", 0))
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    files = ensure_certificate(tmp_path / "tls")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.certificate, files.private_key)
    tls = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_serve_tls, args=(tls, context), daemon=True).start()
    try:
        yield Endpoints(tcp.getsockname()[1], web.server_address[1], tls.getsockname()[1])
    finally:
        web.shutdown()
        web.server_close()
        tcp.close()
        tls.close()


def values_for(endpoints: Endpoints) -> dict[str, dict[str, str]]:
    """Parameter values per starter command: loopback endpoints, this machine's services."""
    return {
        "tcp-check": {"server": "127.0.0.1", "port": str(endpoints.tcp_port)},
        "dns-resolve": {"name": "localhost"},
        "http-check": {"url": f"http://127.0.0.1:{endpoints.http_port}/"},
        "cert-expiry": {"server": "localhost", "port": str(endpoints.tls_port)},
        "service-status": {"service": "ssh"},
        "restart-service": {"service": "ssh", "dry_run": "yes"},
        "firewall-allow-outbound": {"ruleName": "fleetrun test", "endpoint": "127.0.0.1",
                                    "dry_run": "yes"},
        "largest-dirs": {"directory": "/etc", "count": "3"},
    }


FLEET = """
[sandbox]
flush_interval = "0.2s"

[[machines]]
name = "lab-{{n:02}}"
count = {count}
kind = "vm"
os = "linux"
subscription = "77777777-7777-4777-8777-777777777777"
resource_group = "rg-starter"
location = "westeurope"
"""


async def test_every_starter_shell_command_succeeds_on_the_sandbox(
        starter: Library, endpoints: Endpoints, tmp_path: Path) -> None:
    shell = [c for c in starter.sorted() if CommandId.SHELL in c.scripts]
    values = values_for(endpoints)
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET.format(count=len(shell)))
    fleet = await open_fleet([f"sandbox:{path}"], FleetOptions())
    try:
        backends = fleet.backends
        machines = await backends.refresh_health(sorted(fleet.machines, key=lambda m: m.name))
        # One machine per command, all in one run: they run at once.
        pairs = [(machine, saved.command_for(CommandId.SHELL, values.get(saved.name, {})))
                 for machine, saved in zip(machines, shell, strict=True)]
        session = RunSession.plan(pairs, backends.for_machine, runs_root=tmp_path / "runs",
                                  options=FanoutOptions(concurrency=Limit(len(pairs))))
        run = await session.execute()
    finally:
        await fleet.aclose()
    failures = []
    for (machine, _), saved in zip(pairs, shell, strict=True):
        mr = run.machines[machine.id]
        stdout = Path(mr.stdout_file).read_text() if mr.stdout_file else ""
        if mr.state is not RunState.SUCCEEDED or not stdout.strip():
            stderr = Path(mr.stderr_file).read_text() if mr.stderr_file else ""
            failures.append(f"{saved.name}: {mr.state} exit {mr.exit_code} {mr.error}\n"
                            f"stdout: {stdout[-800:]}\nstderr: {stderr[-800:]}")
    assert not failures, "\n\n".join(failures)
