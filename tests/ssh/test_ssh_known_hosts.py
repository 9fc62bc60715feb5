"""OpenSSH's known_hosts files and per-host options, honoured against the real loopback sshd.

Each test writes an ssh config with one Host block for the session's sshd and the
known_hosts files it names, then checks the host as the fleet would (health, or a login).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bench.loopback_sshd import Sshd, running_sshd, unavailable_reason
from core.backends.host_keys import KeyVerdict
from core.backends.ssh import SshBackend, SshSettings
from core.model import Health, HealthStatus, Machine, MachineKind, OsType, SshEndpoint

ALIAS = "box"


def block(sshd: Sshd, *extra: str, alias: str = ALIAS, port: int | None = None) -> str:
    lines = [f"Host {alias}", "    HostName 127.0.0.1", f"    Port {port or sshd.port}",
             f"    User {sshd.user}", f"    IdentityFile {sshd.client_key}",
             *(f"    {line}" for line in extra)]
    return "\n".join(lines) + "\n"


def backend(tmp_path: Path, *blocks: str, **settings: object) -> SshBackend:
    config = tmp_path / "ssh_config"
    config.write_text("".join(blocks))
    options: dict[str, object] = {"config": (config,), "global_known_hosts": None}
    options.update(settings)
    return SshBackend(SshSettings(**options))  # type: ignore[arg-type]


def machine(alias: str = ALIAS) -> Machine:
    return Machine(id=f"ssh:{alias}", name=alias, kind=MachineKind.SSH, os=OsType.LINUX,
                   address=alias, ssh=SshEndpoint(alias))


@contextlib.asynccontextmanager
async def closing(ssh: SshBackend) -> AsyncIterator[SshBackend]:
    try:
        yield ssh
    finally:
        await ssh.aclose()


async def health(ssh: SshBackend, target: Machine | None = None) -> Health:
    target = target or machine()
    result = await asyncio.wait_for(ssh.check_health([target]), 90)
    return result[target.id]


def key_line(sshd: Sshd) -> str:
    return sshd.known_hosts.read_text().strip()


def other_key_line(sshd: Sshd, tmp_path: Path) -> str:
    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    key_type, blob, *_ = key.with_suffix(".pub").read_text().split()
    return f"[127.0.0.1]:{sshd.port} {key_type} {blob}"


def hash_names(path: Path) -> None:
    """Hash a known_hosts file's host names as ``ssh-keygen -H`` does (HashKnownHosts)."""
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(path)], check=True,
                   capture_output=True)


NO_GLOBAL = "GlobalKnownHostsFile none"


# -- which files -----------------------------------------------------------------------------


async def test_a_hosts_user_known_hosts_files_with_tokens_any_of_them_trusts(
    tmp_path: Path, sshd: Sshd
) -> None:
    (tmp_path / "kh-127.0.0.1").write_text(key_line(sshd) + "\n")
    ssh = backend(tmp_path, block(
        sshd, f"UserKnownHostsFile {tmp_path}/absent %d/../{tmp_path}/kh-%h", NO_GLOBAL))
    # %d is the home folder: the second name goes up out of it, back to tmp_path.
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY
    assert not (tmp_path / "absent").exists()  # nothing recorded: the key was known


async def test_accepted_key_goes_to_the_first_user_file_never_the_global_one(
    tmp_path: Path, sshd: Sshd
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    global_file = tmp_path / "global"
    global_file.write_text("# nothing for this host\n")
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {first} {second}",
                                  f"GlobalKnownHostsFile {global_file}",
                                  "StrictHostKeyChecking accept-new"))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY
    assert f"[127.0.0.1]:{sshd.port}" in first.read_text()
    assert not second.exists()
    assert global_file.read_text() == "# nothing for this host\n"


async def test_a_key_in_the_global_file_passes(tmp_path: Path, sshd: Sshd) -> None:
    global_file = tmp_path / "ssh_known_hosts"
    global_file.write_text(key_line(sshd) + "\n")
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {tmp_path}/mine",
                                  f"GlobalKnownHostsFile {global_file}"))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY


async def test_user_known_hosts_none_drops_only_the_user_files(tmp_path: Path,
                                                               sshd: Sshd) -> None:
    """asyncssh turns checking off for `none`; ssh only stops reading the user files."""
    ssh = backend(tmp_path, block(sshd, "UserKnownHostsFile none", NO_GLOBAL))
    async with closing(ssh):
        status = await health(ssh)
        assert status.status is HealthStatus.NOT_READY
        assert [p.verdict for p in ssh.pending_host_keys()] == [KeyVerdict.UNKNOWN]


async def test_hashed_known_hosts_lines_trust(tmp_path: Path, sshd: Sshd) -> None:
    hashed = tmp_path / "hashed"
    hashed.write_text(key_line(sshd) + "\n")
    hash_names(hashed)
    assert hashed.read_text().startswith("|1|")
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {hashed}", NO_GLOBAL))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY


async def test_a_revoked_key_is_refused_though_another_line_trusts_it(
    tmp_path: Path, sshd: Sshd
) -> None:
    line = key_line(sshd)
    known = tmp_path / "known"
    known.write_text(f"{line}\n@revoked * {line.split(' ', 1)[1]}\n")
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL,
                                  "StrictHostKeyChecking no"))
    async with closing(ssh):
        status = await health(ssh)
    assert status.status is not HealthStatus.READY
    assert "@revoked" in status.detail


async def test_a_known_hosts_file_others_may_write_is_refused_by_name(
    tmp_path: Path, sshd: Sshd
) -> None:
    known = tmp_path / "known"
    known.write_text(key_line(sshd) + "\n")
    known.chmod(0o666)
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL))
    async with closing(ssh):
        status = await health(ssh)
    assert status.status is not HealthStatus.READY
    assert str(known) in status.detail and "chmod go-w" in status.detail


# -- StrictHostKeyChecking -----------------------------------------------------------------


async def test_strict_yes_refuses_an_unknown_key_without_offering_review(
    tmp_path: Path, sshd: Sshd
) -> None:
    known = tmp_path / "known"
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL,
                                  "StrictHostKeyChecking yes"))
    async with closing(ssh):
        status = await health(ssh)
        assert status.status is HealthStatus.NOT_READY
        assert "StrictHostKeyChecking yes" in status.detail
        assert ssh.pending_host_keys() == []
    assert not known.exists()


async def test_ask_is_the_default_and_collects_the_key_for_review(tmp_path: Path,
                                                                  sshd: Sshd) -> None:
    known = tmp_path / "known"
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        pending = ssh.pending_host_keys()
        assert [p.verdict for p in pending] == [KeyVerdict.UNKNOWN]
        ssh.trust_host_keys(pending)  # recorded in this host's own first user file
        assert f"[127.0.0.1]:{sshd.port}" in known.read_text()
        assert (await health(ssh)).status is HealthStatus.READY


async def test_the_flag_means_accept_new_for_every_host(tmp_path: Path, sshd: Sshd) -> None:
    known = tmp_path / "known"
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL,
                                  "StrictHostKeyChecking yes"), accept_new_host_keys=True)
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY
    assert f"[127.0.0.1]:{sshd.port}" in known.read_text()


async def test_accept_new_refuses_a_changed_key(tmp_path: Path, sshd: Sshd) -> None:
    known = tmp_path / "known"
    known.write_text(other_key_line(sshd, tmp_path) + "\n")
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL,
                                  "StrictHostKeyChecking accept-new"))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        problems = list(ssh.host_key_problems().values())
        assert [p.verdict for p in problems] == [KeyVerdict.CHANGED]


async def test_strict_no_lets_a_changed_key_through_with_a_warning_naming_both(
    tmp_path: Path, sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    known = tmp_path / "known"
    old = other_key_line(sshd, tmp_path)
    known.write_text(old + "\n")
    ssh = backend(tmp_path, block(sshd, f"UserKnownHostsFile {known}", NO_GLOBAL,
                                  "StrictHostKeyChecking off"))
    with caplog.at_level(logging.WARNING):
        async with closing(ssh):
            assert (await health(ssh)).status is HealthStatus.READY
    warning = " ".join(r.getMessage() for r in caplog.records if "CHANGED" in r.getMessage())
    assert sshd.host_key.get_fingerprint() in warning
    assert "StrictHostKeyChecking no" in warning
    assert known.read_text() == old + "\n"  # a changed key is never written over


async def test_a_bad_strict_value_is_one_line_naming_the_option(tmp_path: Path,
                                                                sshd: Sshd) -> None:
    ssh = backend(tmp_path, block(sshd, "StrictHostKeyChecking maybe"))
    async with closing(ssh):
        status = await health(ssh)
    assert status.status is HealthStatus.UNREACHABLE
    assert "StrictHostKeyChecking maybe" in status.detail and "accept-new" in status.detail


# -- connection options --------------------------------------------------------------------


async def _late_relay(port_holder: list[int], target: int, delay: float) -> asyncio.Server:
    await asyncio.sleep(delay)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    return await asyncio.start_server(handle, "127.0.0.1", port_holder[0])


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_connection_attempts_retry_until_the_port_opens(tmp_path: Path,
                                                              sshd: Sshd) -> None:
    port = free_port()
    known = tmp_path / "known"
    known.write_text(key_line(sshd).replace(f":{sshd.port}", f":{port}") + "\n")
    ssh = backend(tmp_path, block(sshd, "ConnectionAttempts 30", port=port),
                  known_hosts=known)
    opening = asyncio.create_task(_late_relay([port], sshd.port, 1.5))
    async with closing(ssh):
        status = await health(ssh)
    server = await opening
    server.close()
    assert status.status is HealthStatus.READY, status.detail


async def test_one_attempt_against_a_refusing_port_fails_in_one_line(tmp_path: Path,
                                                                     sshd: Sshd) -> None:
    ssh = backend(tmp_path, block(sshd, "ConnectionAttempts 2", port=free_port()),
                  known_hosts=sshd.known_hosts)
    async with closing(ssh):
        status = await health(ssh)
    assert status.status is HealthStatus.UNREACHABLE
    assert "cannot connect" in status.detail and "\n" not in status.detail


async def test_server_alive_options_become_the_connections_keepalive(tmp_path: Path,
                                                                     sshd: Sshd) -> None:
    ssh = backend(tmp_path, block(sshd, "ServerAliveInterval 7", "ServerAliveCountMax 5"),
                  known_hosts=sshd.known_hosts)
    (tmp_path / "plain").mkdir()
    plain = backend(tmp_path / "plain", block(sshd, alias="plain"), known_hosts=sshd.known_hosts,
                    keepalive_interval=4.0)
    async with closing(ssh), closing(plain):
        connection = await ssh.connection(machine())
        assert connection._keepalive_interval == 7
        assert connection._keepalive_count_max == 5
        unset = await plain.connection(machine("plain"))
        assert unset._keepalive_interval == 4.0


@pytest.fixture
def agent(tmp_path: Path, sshd: Sshd) -> Iterator[Path]:
    if shutil.which("ssh-agent") is None:
        pytest.skip("ssh-agent is not installed")
    socket_path = tmp_path / "agent.sock"
    started = subprocess.run(["ssh-agent", "-a", str(socket_path)], check=True,
                             capture_output=True, text=True)
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        env = {**os.environ, "SSH_AUTH_SOCK": str(socket_path)}
        subprocess.run(["ssh-add", str(sshd.client_key)], check=True, capture_output=True,
                       env=env)
        yield socket_path
    finally:
        os.kill(pid, 15)


async def test_a_missing_identity_file_falls_back_to_the_agent(tmp_path: Path, sshd: Sshd,
                                                                agent: Path) -> None:
    lines = block(sshd, f"IdentityAgent {agent}").replace(
        f"IdentityFile {sshd.client_key}", f"IdentityFile {tmp_path}/no-such-key")
    ssh = backend(tmp_path, lines, known_hosts=sshd.known_hosts)
    async with closing(ssh):
        status = await health(ssh)
    assert status.status is HealthStatus.READY, status.detail


async def test_identity_agent_none_and_a_missing_key_is_a_login_failure_not_a_crash(
    tmp_path: Path, sshd: Sshd, agent: Path
) -> None:
    lines = block(sshd, "IdentityAgent none").replace(
        f"IdentityFile {sshd.client_key}", f"IdentityFile {tmp_path}/no-such-key")
    ssh = backend(tmp_path, lines, known_hosts=sshd.known_hosts)
    async with closing(ssh):
        status = await health(ssh)
    assert status.status is HealthStatus.NOT_READY
    assert "authentication failed" in status.detail


# -- @cert-authority -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed_sshd() -> Iterator[tuple[Sshd, str]]:
    """An sshd whose host key a test CA signed; yields it and the CA's public key line."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="fleetrun-hostca-"))
    root.chmod(0o755)  # sshd reads authorized_keys as the test user
    try:
        ca = root / "ca"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ca)],
                       check=True)
        (root / "server").mkdir()
        with running_sshd(root / "server", host_ca=ca) as server:
            yield server, " ".join(ca.with_suffix(".pub").read_text().split()[:2])
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def test_a_host_certificate_signed_by_a_trusted_ca_passes(
    tmp_path: Path, signed_sshd: tuple[Sshd, str]
) -> None:
    server, ca_key = signed_sshd
    known = tmp_path / "known"
    known.write_text(f"@cert-authority 127.0.0.1,[127.0.0.1]:* {ca_key}\n")
    ssh = backend(tmp_path, block(server, f"UserKnownHostsFile {known}", NO_GLOBAL))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY


async def test_a_ca_for_other_hosts_vouches_for_nothing_here(
    tmp_path: Path, signed_sshd: tuple[Sshd, str]
) -> None:
    server, ca_key = signed_sshd
    known = tmp_path / "known"
    known.write_text(f"@cert-authority *.example.com,!127.0.0.1 {ca_key}\n")
    ssh = backend(tmp_path, block(server, f"UserKnownHostsFile {known}", NO_GLOBAL))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        assert [p.verdict for p in ssh.pending_host_keys()] == [KeyVerdict.UNKNOWN]
