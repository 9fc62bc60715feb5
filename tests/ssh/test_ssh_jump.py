"""Bastions as people configure them, through real loopback sshd's: ProxyJump by alias, chains,
ProxyCommand, one shared connection per bastion, and the messages when a route fails.

Three sshd's play a bastion, a middle hop and the target; each logs every login, which is
how the tests count the connections a bastion saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.loopback_sshd import Sshd, running_sshd, unavailable_reason
from core.backends.ssh import SshBackend, SshSettings
from core.backends.ssh_jump import Hop, JumpError, parse_proxy_jump, proxy_command_argv
from core.events import Finished, OutputAppended
from core.model import (
    Command,
    CommandId,
    HealthStatus,
    Machine,
    MachineKind,
    OsType,
    RunState,
    SshEndpoint,
)

RELAY = Path(__file__).with_name("tcp_relay.py")


@dataclass(frozen=True)
class Servers:
    bastion: Sshd
    middle: Sshd
    target: Sshd


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="fleetrun-jump-"))
    root.chmod(0o755)  # sshd reads each authorized_keys as the test user
    try:
        with contextlib.ExitStack() as stack:
            started = []
            for name in ("bastion", "middle", "target"):
                (root / name).mkdir()
                started.append(stack.enter_context(running_sshd(root / name)))
            yield Servers(*started)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def logins(server: Sshd) -> int:
    """Logins the server has accepted so far (its log says so for each)."""
    return (server.root / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def host_block(alias: str, server: Sshd, *extra: str) -> str:
    lines = [f"Host {alias}", "    HostName 127.0.0.1", f"    Port {server.port}",
             f"    User {server.user}", f"    IdentityFile {server.client_key}",
             *(f"    {line}" for line in extra)]
    return "\n".join(lines) + "\n"


def setup(tmp_path: Path, servers: Servers, *blocks: str,
          trust: tuple[Sshd, ...] | None = None) -> SshBackend:
    """A backend whose ssh config is ``blocks`` and whose known_hosts trusts ``trust``."""
    config = tmp_path / "ssh_config"
    config.write_text("".join(blocks))
    known = tmp_path / "known_hosts"
    chosen = trust if trust is not None else (servers.bastion, servers.middle, servers.target)
    known.write_text("".join(s.known_hosts.read_text() for s in chosen))
    return SshBackend(SshSettings(known_hosts=known, config=(config,), connect_timeout=None))


def machine(alias: str) -> Machine:
    return Machine(id=f"ssh:{alias}", name=alias, kind=MachineKind.SSH, os=OsType.LINUX,
                   address=alias, ssh=SshEndpoint(alias))


async def run(backend: SshBackend, target: Machine, script: str = "echo $SSH_CONNECTION"
              ) -> tuple[Finished, bytes]:
    command = Command(CommandId.SHELL, script, timeout=60)

    async def events() -> tuple[Finished, bytes]:
        out = b""
        async for event in backend.run(target, command, run_id="r1"):
            if isinstance(event, OutputAppended):
                out += event.data
            if isinstance(event, Finished):
                return event, out
        raise AssertionError("no Finished event")

    return await asyncio.wait_for(events(), 90)


@contextlib.asynccontextmanager
async def closing(backend: SshBackend) -> AsyncIterator[SshBackend]:
    try:
        yield backend
    finally:
        await backend.aclose()


# -- routes ---------------------------------------------------------------------------------


async def test_proxyjump_by_alias_uses_the_alias_own_block(tmp_path: Path,
                                                           servers: Servers) -> None:
    before = logins(servers.bastion), logins(servers.target)
    backend = setup(tmp_path, servers,
                    host_block("web", servers.target, "ProxyJump jumpy"),
                    host_block("jumpy", servers.bastion))
    async with closing(backend):
        done, out = await run(backend, machine("web"))
    assert done.state is RunState.SUCCEEDED, done.error
    # SSH_CONNECTION on the target: it was reached on its own port (through the bastion).
    assert out.split()[-1] == str(servers.target.port).encode()
    assert logins(servers.bastion) == before[0] + 1
    assert logins(servers.target) == before[1] + 1


async def test_many_hosts_behind_one_bastion_share_one_connection(tmp_path: Path,
                                                                  servers: Servers) -> None:
    before = logins(servers.bastion)
    aliases = [f"node{i}" for i in range(6)]
    backend = setup(tmp_path, servers,
                    *(host_block(a, servers.target, "ProxyJump jumpy") for a in aliases),
                    host_block("jumpy", servers.bastion))
    async with closing(backend):
        results = await asyncio.gather(*(run(backend, machine(a)) for a in aliases))
        health = await backend.check_health([machine(a) for a in aliases])
        assert backend.bastions.opened == 1
    assert all(done.state is RunState.SUCCEEDED for done, _ in results), results
    assert {h.status for h in health.values()} == {HealthStatus.READY}
    assert logins(servers.bastion) == before + 1


async def test_a_comma_chain_visits_its_hops_in_order(tmp_path: Path, servers: Servers) -> None:
    before = logins(servers.bastion), logins(servers.middle)
    backend = setup(tmp_path, servers,
                    host_block("deep", servers.target, "ProxyJump jumpy,inner"),
                    host_block("jumpy", servers.bastion),
                    # Reached through jumpy only: the loopback address is the bastion's to
                    # reach, but a ProxyJump of its own must not apply after a comma.
                    host_block("inner", servers.middle, "ProxyJump none-such-host"))
    async with closing(backend):
        done, _ = await run(backend, machine("deep"))
        assert backend.bastions.opened == 2
    assert done.state is RunState.SUCCEEDED, done.error
    assert (logins(servers.bastion), logins(servers.middle)) == (before[0] + 1, before[1] + 1)


async def test_a_hop_own_proxyjump_is_followed(tmp_path: Path, servers: Servers) -> None:
    before = logins(servers.bastion), logins(servers.middle)
    backend = setup(tmp_path, servers,
                    host_block("far", servers.target, "ProxyJump inner"),
                    host_block("inner", servers.middle, "ProxyJump jumpy"),
                    host_block("jumpy", servers.bastion))
    async with closing(backend):
        done, _ = await run(backend, machine("far"))
    assert done.state is RunState.SUCCEEDED, done.error
    assert (logins(servers.bastion), logins(servers.middle)) == (before[0] + 1, before[1] + 1)


async def test_proxyjump_none_connects_directly(tmp_path: Path, servers: Servers) -> None:
    before = logins(servers.bastion)
    backend = setup(tmp_path, servers,
                    host_block("direct", servers.target, "ProxyJump none"),
                    "Host *\n    ProxyJump jumpy\n",
                    host_block("jumpy", servers.bastion))
    async with closing(backend):
        done, _ = await run(backend, machine("direct"))
        assert backend.bastions.opened == 0
    assert done.state is RunState.SUCCEEDED, done.error
    assert logins(servers.bastion) == before


@pytest.mark.parametrize("suffix", ["", " 2>/dev/null"], ids=["no-shell", "through-sh"])
async def test_proxycommand_carries_the_connection(tmp_path: Path, servers: Servers,
                                                   suffix: str) -> None:
    counted = tmp_path / "proxies"
    proxy = f"ProxyCommand {sys.executable} {RELAY} %h %p {counted}{suffix}"
    backend = setup(tmp_path, servers, host_block("proxied", servers.target, proxy))
    async with closing(backend):
        done, _ = await run(backend, machine("proxied"))
    assert done.state is RunState.SUCCEEDED, done.error
    assert counted.read_text() == f"127.0.0.1:{servers.target.port}\n"  # %h and %p expanded


async def test_a_proxycommand_that_fails_says_why(tmp_path: Path, servers: Servers) -> None:
    proxy = f"ProxyCommand {sys.executable} -c \"raise SystemExit('no route to %h')\""
    backend = setup(tmp_path, servers, host_block("proxied", servers.target, proxy))
    async with closing(backend):
        done, _ = await run(backend, machine("proxied"))
    assert done.state is RunState.FAILED
    assert "the proxy command ended: no route to 127.0.0.1" in done.error, done.error


def test_a_proxycommand_needing_no_shell_runs_without_one() -> None:
    assert proxy_command_argv("relay 'a b' 22") == ("relay", "a b", "22")
    assert proxy_command_argv("relay h 22 | tee x") == ("/bin/sh", "-c",
                                                        "exec relay h 22 | tee x")


# -- failures -------------------------------------------------------------------------------


async def test_a_dead_bastion_is_named_on_every_machine_behind_it(tmp_path: Path,
                                                                  servers: Servers) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    aliases = ["a1", "a2", "a3"]
    backend = setup(tmp_path, servers,
                    *(host_block(a, servers.target, "ProxyJump b1") for a in aliases),
                    f"Host b1\n    HostName 127.0.0.1\n    Port {closed}\n")
    async with closing(backend):
        results = await asyncio.gather(*(run(backend, machine(a)) for a in aliases))
    for done, _ in results:
        assert done.state is RunState.FAILED
        assert f"bastion b1 (127.0.0.1:{closed}): cannot connect: Connection refused" \
            in done.error, done.error


async def test_an_unknown_bastion_key_is_refused_and_offered_for_review(
    tmp_path: Path, servers: Servers
) -> None:
    backend = setup(tmp_path, servers,
                    host_block("web", servers.target, "ProxyJump jumpy"),
                    host_block("jumpy", servers.bastion), trust=(servers.target,))
    async with closing(backend):
        done, _ = await run(backend, machine("web"))
        pending = backend.pending_host_keys()
    assert done.state is RunState.FAILED
    assert "unknown host key" in done.error
    assert [(p.host, p.port) for p in pending] == [("127.0.0.1", servers.bastion.port)]


async def test_a_name_that_does_not_resolve_says_so(tmp_path: Path, servers: Servers) -> None:
    backend = setup(tmp_path, servers,
                    "Host lost\n    HostName no-such-host.invalid\n",
                    "Host behind\n    ProxyJump gone\n",
                    "Host gone\n    HostName gone-bastion.invalid\n")
    async with closing(backend):
        lost, _ = await run(backend, machine("lost"))
        behind, _ = await run(backend, machine("behind"))
    assert "cannot resolve no-such-host.invalid" in lost.error
    assert "Unknown error" not in lost.error
    assert "bastion gone (gone-bastion.invalid:22): cannot resolve gone-bastion.invalid" \
        in behind.error, behind.error


async def test_a_jump_loop_is_refused(tmp_path: Path, servers: Servers) -> None:
    backend = setup(tmp_path, servers,
                    "Host ping\n    ProxyJump pong\n", "Host pong\n    ProxyJump ping\n")
    async with closing(backend):
        done, _ = await run(backend, machine("ping"))
    assert "jump host loop via ping" in done.error, done.error


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A port that accepts TCP and then never says a word (no SSH banner)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()


async def test_connect_timeout_comes_from_the_config_unless_given(tmp_path: Path,
                                                                  servers: Servers) -> None:
    async with silent_server() as port:
        block = f"Host mute\n    HostName 127.0.0.1\n    Port {port}\n    ConnectTimeout 1\n"
        backend = setup(tmp_path, servers, block)
        async with closing(backend):
            from_config, _ = await run(backend, machine("mute"))
        given = SshBackend(SshSettings(known_hosts=tmp_path / "known_hosts",
                                       config=(tmp_path / "ssh_config",), connect_timeout=0.5))
        async with closing(given):
            from_flag, _ = await run(given, machine("mute"))
    assert "no answer within 1 s" in from_config.error, from_config.error
    assert "no answer within 0.5 s" in from_flag.error, from_flag.error


def test_proxyjump_values_parse_as_ssh_reads_them() -> None:
    assert parse_proxy_jump("none", "x") == ()
    assert parse_proxy_jump("a,bob@b:2222,ssh://c,[::1]:23", "x") == (
        Hop("a"), Hop("b", "bob", 2222), Hop("c"), Hop("::1", "", 23))
    with pytest.raises(JumpError, match="port '99999'"):
        parse_proxy_jump("a:99999", "web")
    with pytest.raises(JumpError, match="each hop is"):
        parse_proxy_jump("a,,b", "web")


async def test_a_bad_ssh_config_fails_the_machine_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host web\n    Port eighty\n")
    backend = SshBackend(SshSettings(known_hosts=tmp_path / "known_hosts", config=(config,)))
    async with closing(backend):
        done, _ = await run(backend, machine("web"))
    assert done.state is RunState.FAILED
    assert f"ssh config: {config} line 2: Invalid Port integer value: eighty" in done.error
