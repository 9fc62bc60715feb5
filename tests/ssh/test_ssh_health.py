"""Health over SSH against the real loopback sshd: before a run a host is only logged into.

``check_health`` (a machine list) also runs a probe command to show a host without bash;
``check_reachable`` (what a run checks first) opens no session at all, and the run then
uses that same connection, so a run costs every host one login and one session.
"""

from __future__ import annotations

import asyncio

import asyncssh
import pytest

from core.backends.ssh import SshBackend, SshSettings
from core.events import Finished, MachineEvent, OutputAppended
from core.fleet import Backends
from core.model import Command, CommandId, HealthStatus, MachineKind, RunState
from tests.ssh.test_ssh_jump import logins
from tests.sshd import Sshd


@pytest.fixture
def sessions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The command of every session any SSH connection opens from now on."""
    opened: list[str] = []
    create_session = asyncssh.SSHClientConnection.create_session

    async def counting(self: asyncssh.SSHClientConnection, *args: object,
                       **kwargs: object) -> object:
        opened.append(str(kwargs.get("command", args[1] if len(args) > 1 else "")))
        return await create_session(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncssh.SSHClientConnection, "create_session", counting)
    return opened


async def test_a_check_before_a_run_logs_in_and_runs_nothing(
    sshd: Sshd, sessions: list[str]
) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    machine = sshd.machine()
    before = logins(sshd)
    try:
        health = (await ssh.check_reachable([machine]))[machine.id]
        assert health.status is HealthStatus.READY, health
        assert "logged in" in health.detail and health.agent_version
        assert sessions == []
        command = Command(CommandId.SHELL, "echo hi", timeout=60)
        events: list[MachineEvent] = [
            e async for e in ssh.run(machine.with_health(health), command, run_id="r1")]
    finally:
        await ssh.aclose()
    last = events[-1]
    assert isinstance(last, Finished) and last.state is RunState.SUCCEEDED, last
    assert b"".join(e.data for e in events if isinstance(e, OutputAppended)) == b"hi\n"
    assert len(sessions) == 1  # the run's own; the check's connection carried it
    assert logins(sshd) == before + 1


async def test_a_machine_list_still_probes_bash(sshd: Sshd, sessions: list[str]) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    machine = sshd.machine()
    try:
        health = (await ssh.check_health([machine]))[machine.id]
    finally:
        await ssh.aclose()
    assert health.status is HealthStatus.READY and health.detail.startswith("bash, ")
    assert len(sessions) == 1 and "fleetrun-ok" in sessions[0]


async def test_a_fleet_checks_ssh_hosts_before_a_run_without_a_probe(
    sshd: Sshd, sessions: list[str]
) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    backends = Backends({MachineKind.SSH: ssh})
    machines = [sshd.machine(f"host-{i}") for i in range(3)]
    try:
        checked = await asyncio.wait_for(backends.refresh_health(machines, before_run=True),
                                         60)
        listed = await asyncio.wait_for(backends.refresh_health(machines), 60)
    finally:
        await ssh.aclose()
    assert {m.health.status for m in checked} == {HealthStatus.READY}
    assert {m.health.status for m in listed} == {HealthStatus.READY}
    assert len(sessions) == 3 and all("fleetrun-ok" in s for s in sessions)  # the list's
