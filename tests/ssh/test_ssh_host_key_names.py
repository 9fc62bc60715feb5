"""known_hosts is matched by the host's name alone, as ssh matches it, against the loopback sshd.

asyncssh alone also matches the address connected to, so a key trusted for
``[127.0.0.1]:P`` let ``localhost:P`` through; ssh (CheckHostIP no, its default) looks the
key up under HostKeyAlias or ``[HostName]:port`` only, and so do a run and a scan now.
"""

from __future__ import annotations

from pathlib import Path

from bench.loopback_sshd import Sshd
from core.backends.host_keys import KeyVerdict
from core.host_key_scan import ScanVerdict
from core.model import HealthStatus
from tests.ssh.test_ssh_known_hosts import (
    NO_GLOBAL,
    backend,
    closing,
    hash_names,
    health,
    machine,
)


def named_block(sshd: Sshd, hostname: str, *extra: str) -> str:
    lines = ["Host box", f"    HostName {hostname}", f"    Port {sshd.port}",
             f"    User {sshd.user}", f"    IdentityFile {sshd.client_key}",
             *(f"    {line}" for line in extra)]
    return "\n".join(lines) + "\n"


def key_text(sshd: Sshd) -> str:
    """The server's key as ``TYPE BASE64``, without a host name."""
    return sshd.host_key.export_public_key().decode().strip()


async def test_a_key_trusted_for_the_address_does_not_vouch_for_another_name(
    tmp_path: Path, sshd: Sshd
) -> None:
    known = tmp_path / "known"
    known.write_text(f"[127.0.0.1]:{sshd.port} {key_text(sshd)}\n")
    ssh = backend(tmp_path, named_block(sshd, "localhost", f"UserKnownHostsFile {known}",
                                        NO_GLOBAL))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        pending = ssh.pending_host_keys()
        assert [(p.host, p.port, p.verdict) for p in pending] == [
            ("localhost", sshd.port, KeyVerdict.UNKNOWN)]
        scan = await ssh.scan_host_keys(machine())
        assert (scan.where, scan.verdict) == (f"[localhost]:{sshd.port}", ScanVerdict.UNKNOWN)


async def test_check_host_ip_yes_on_a_loopback_address_still_matches_by_name(
    tmp_path: Path, sshd: Sshd
) -> None:
    # fleetrun matches by name whatever CheckHostIP says; ssh too on a loopback address.
    known = tmp_path / "known"
    known.write_text(f"[127.0.0.1]:{sshd.port} {key_text(sshd)}\n")
    ssh = backend(tmp_path, named_block(sshd, "localhost", f"UserKnownHostsFile {known}",
                                        NO_GLOBAL, "CheckHostIP yes"))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        assert [p.host for p in ssh.pending_host_keys()] == ["localhost"]


async def test_a_key_for_the_bare_name_serves_a_port_that_has_no_key_of_its_type(
    tmp_path: Path, sshd: Sshd
) -> None:
    # ssh's "checking without port identifier": [localhost]:P unknown, localhost known.
    known = tmp_path / "known"
    known.write_text(f"localhost {key_text(sshd)}\n")
    ssh = backend(tmp_path, named_block(sshd, "localhost", f"UserKnownHostsFile {known}",
                                        NO_GLOBAL))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY
        assert (await ssh.scan_host_keys(machine())).verdict is ScanVerdict.KNOWN


async def test_host_key_alias_is_the_name_looked_up_and_recorded_without_a_port(
    tmp_path: Path, sshd: Sshd
) -> None:
    known = tmp_path / "known"
    # Trusted for the real address only: ssh would not use it, the alias is the name.
    known.write_text(f"[127.0.0.1]:{sshd.port} {key_text(sshd)}\n")
    ssh = backend(tmp_path, named_block(sshd, "127.0.0.1", f"UserKnownHostsFile {known}",
                                        NO_GLOBAL, "HostKeyAlias box.lab"))
    async with closing(ssh):
        scan = await ssh.scan_host_keys(machine())
        assert (scan.where, scan.verdict) == ("box.lab", ScanVerdict.UNKNOWN)
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        pending = ssh.pending_host_keys()
        assert [p.key_line.split()[0] for p in pending] == ["box.lab"]
        ssh.trust_host_keys(pending)
        assert f"box.lab {key_text(sshd)}" in known.read_text()
        assert (await health(ssh)).status is HealthStatus.READY


async def test_hashed_alias_entries_are_matched(tmp_path: Path, sshd: Sshd) -> None:
    known = tmp_path / "known"
    known.write_text(f"box.lab {key_text(sshd)}\n")
    hash_names(known)
    assert "box.lab" not in known.read_text()
    ssh = backend(tmp_path, named_block(sshd, "127.0.0.1", f"UserKnownHostsFile {known}",
                                        NO_GLOBAL, "HostKeyAlias box.lab"))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.READY
