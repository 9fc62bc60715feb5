"""The SSH backend when hosts misbehave: refused, reset, blackholed, wrong keys."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import asyncssh

from core.backends.host_keys import KeyVerdict
from core.backends.ssh import SshBackend, SshSettings
from core.events import Finished, MachineEvent, OutputAppended
from core.model import Command, CommandId, HealthStatus, Machine, RunState
from tests.contract.harness import survivors
from tests.ssh.fake_server import FakeHost, Proxy, fake_host
from tests.sshd import Sshd

QUICK = dict(connect_timeout=3.0, keepalive_interval=0.3, keepalive_count_max=2)


def backend(host: FakeHost, **settings: object) -> SshBackend:
    return SshBackend(SshSettings(known_hosts=host.known_hosts, **{**QUICK, **settings}))


async def collect(backend: SshBackend, machine: Machine, within: float = 20) -> list[MachineEvent]:
    command = Command(CommandId.SHELL, "ignored by the fake server", timeout=60)

    async def gather() -> list[MachineEvent]:
        return [e async for e in backend.run(machine, command, run_id="r1")]

    return await asyncio.wait_for(gather(), within)


def finished(events: list[MachineEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished), events
    return last


async def test_a_trusted_host_runs(tmp_path: Path) -> None:
    async with fake_host(tmp_path) as host:
        host.trust()
        ssh = backend(host)
        events = await collect(ssh, host.machine())
        assert finished(events).state is RunState.SUCCEEDED
        out = b"".join(e.data for e in events if isinstance(e, OutputAppended))
        assert out.startswith(b"started\n") and b"tick 39\n" in out
        health = await ssh.check_health([host.machine()])
        assert health["ssh:fake"].status is HealthStatus.NOT_READY  # no real bash there
        await ssh.aclose()


async def test_connection_refused_is_unreachable_and_fails_the_run(tmp_path: Path) -> None:
    async with fake_host(tmp_path) as host:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        host.trust(port=closed)
        ssh = backend(host)
        machine = host.machine(port=closed)
        health = (await ssh.check_health([machine]))[machine.id]
        assert health.status is HealthStatus.UNREACHABLE
        assert "refused" in health.detail.lower()
        result = finished(await collect(ssh, machine))
        assert result.state is RunState.FAILED
        assert "refused" in result.error.lower()


async def test_a_reset_during_the_handshake_is_reported(tmp_path: Path) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with fake_host(tmp_path) as host:
            ssh = backend(host)
            machine = host.machine(port=port)
            health = (await ssh.check_health([machine]))[machine.id]
            assert health.status is HealthStatus.UNREACHABLE
            result = finished(await collect(ssh, machine))
            assert result.state is RunState.FAILED
            assert result.error
    finally:
        server.close()
        await server.wait_closed()


async def test_a_blackholed_host_is_noticed_by_keepalives(tmp_path: Path) -> None:
    async with fake_host(tmp_path) as host:
        proxy = Proxy(host.port)
        port = await proxy.start()
        host.trust(port=port)
        ssh = backend(host)
        machine = host.machine(port=port)
        command = Command(CommandId.SHELL, "ignored", timeout=60)
        events: list[MachineEvent] = []

        async def run() -> None:
            async for event in ssh.run(machine, command, run_id="r2"):
                events.append(event)
                if isinstance(event, OutputAppended) and b"started" in event.data:
                    proxy.blackhole()

        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.wait_for(run(), 15)
        result = finished(events)
        assert result.state is RunState.FAILED
        assert "connection" in result.error.lower()
        assert loop.time() - began < 10  # keepalives (0.3 s x 2), not a TCP timeout
        await proxy.close()


async def test_authentication_failure_is_named(tmp_path: Path) -> None:
    async with fake_host(tmp_path, authorize=False) as host:
        host.trust()
        ssh = backend(host)
        health = (await ssh.check_health([host.machine()]))["ssh:fake"]
        assert health.status is HealthStatus.NOT_READY
        assert "authentication failed" in health.detail
        result = finished(await collect(ssh, host.machine()))
        assert result.state is RunState.FAILED
        assert "authentication failed" in result.error


async def test_an_unknown_host_key_is_refused_and_kept_for_review(tmp_path: Path) -> None:
    async with fake_host(tmp_path) as host:
        ssh = backend(host)
        result = finished(await collect(ssh, host.machine()))
        assert result.state is RunState.FAILED
        fingerprint = host.host_key.get_fingerprint()
        assert "unknown host key" in result.error and fingerprint in result.error
        [pending] = ssh.pending_host_keys()
        assert pending.verdict is KeyVerdict.UNKNOWN and pending.fingerprint == fingerprint
        assert not host.known_hosts.exists()
        ssh.host_keys.accept([pending])  # the batch review said yes
        assert finished(await collect(ssh, host.machine())).state is RunState.SUCCEEDED
        assert ssh.pending_host_keys() == []
        assert f"[127.0.0.1]:{host.port}" in host.known_hosts.read_text()


async def test_accept_new_host_keys_records_them(tmp_path: Path) -> None:
    async with fake_host(tmp_path) as host:
        ssh = backend(host, accept_new_host_keys=True)
        assert finished(await collect(ssh, host.machine())).state is RunState.SUCCEEDED
        trusted = asyncssh.import_known_hosts(host.known_hosts.read_text())
        keys, *_ = trusted.match("127.0.0.1", "127.0.0.1", host.port)
        assert {k.get_fingerprint() for k in keys} == {host.host_key.get_fingerprint()}


async def test_a_changed_host_key_is_refused_even_when_accepting_new_ones(
    tmp_path: Path
) -> None:
    async with fake_host(tmp_path) as host:
        impostor_known = asyncssh.generate_private_key("ssh-ed25519")
        host.trust(impostor_known)
        before = host.known_hosts.read_text()
        ssh = backend(host, accept_new_host_keys=True)
        result = finished(await collect(ssh, host.machine()))
        assert result.state is RunState.FAILED
        assert "CHANGED" in result.error
        assert host.host_key.get_fingerprint() in result.error
        assert impostor_known.get_fingerprint() in result.error
        assert host.known_hosts.read_text() == before
        assert ssh.pending_host_keys() == []  # nothing to accept in a review either


async def test_aliases_of_one_host_accept_its_new_key_once_and_all_connect(
    tmp_path: Path
) -> None:
    async with fake_host(tmp_path) as host:
        ssh = backend(host, accept_new_host_keys=True)
        machines = [host.machine(f"alias-{i}") for i in range(6)]
        health = await ssh.check_health(machines)
        # The fake runs no bash, so NotReady for that, but never for a key
        assert all("host key" not in h.detail for h in health.values()), health
        lines = host.known_hosts.read_text().splitlines()
        assert len(lines) == 1
        await ssh.aclose()


async def test_a_vanished_client_leaves_nothing_running_on_the_host(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    machine = sshd.machine()
    command = Command(CommandId.SHELL, 'sleep 300 & echo "pids $$ $!"; sleep 300', timeout=0)
    pids: list[int] = []

    async def run() -> None:
        async for event in ssh.run(machine, command, run_id="gone1"):
            if isinstance(event, OutputAppended) and b"pids" in event.data:
                pids.extend(int(p) for p in event.data.split()[1:3])
                # The client dies without a word: no cancel, no kill channel.
                (await ssh.connection(machine)).abort()

    await asyncio.wait_for(run(), 20)
    assert len(pids) == 2
    assert await survivors(pids, within=5) == []
    await ssh.aclose()
