"""``fleetrun hostkeys scan|trust`` against real sshds: review, pin, and the pin holding.

Two servers, so that two hosts have keys known_hosts tells apart (known_hosts is matched
by name only, as ssh does, but both machines are named 127.0.0.1 here).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from bench.loopback_sshd import running_sshd
from tests.cli.conftest import CliRunner, Home
from tests.sshd import Sshd


@pytest.fixture
def second_sshd() -> Iterator[Sshd]:
    """A private sshd of this test's own, whose host key the test may swap."""
    root = Path(tempfile.mkdtemp(prefix="fleetrun-sshd-hk-"))
    try:
        with running_sshd(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


def host_block(name: str, server: Sshd, port: int | None = None) -> str:
    return f"""
[[hosts]]
name = "{name}"
host = "127.0.0.1"
port = {port or server.port}
user = "{server.user}"
identity_file = "{server.client_key}"
"""


def keygen_fingerprint(server: Sshd) -> str:
    """What ``ssh-keygen -lf`` says of the server's host key file."""
    printed = subprocess.run(["ssh-keygen", "-lf", str(server.root / "host_key")],
                             capture_output=True, text=True, check=True).stdout
    return printed.split()[1]


@pytest.fixture
def fake_home(home: Home) -> Path:
    path = home.config.parent / "home"
    path.mkdir()
    return path


def known_hosts(fake_home: Path) -> Path:
    return fake_home / ".ssh" / "known_hosts"


def run_states(cli: CliRunner, fleet: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    result = cli("run", "--fleet", str(fleet), "--shell", "echo ok", "-o", "json", env=env)
    return {m["machine"]: m for m in json.loads(result.stdout)["machines"]}


def test_scan_shows_keygen_fingerprints_records_privately_and_writes_no_known_hosts(
    cli: CliRunner, home: Home, sshd: Sshd, fake_home: Path
) -> None:
    fleet = home.config.parent / "hosts.toml"
    fleet.write_text(host_block("loop-1", sshd))
    env = {"HOME": str(fake_home)}

    scanned = cli("hostkeys", "scan", "--fleet", str(fleet), "-o", "json", env=env)
    assert scanned.returncode == 1, scanned.stderr  # 1: a host's key is unknown
    doc = json.loads(scanned.stdout)
    assert set(doc) == {"version", "fleet", "scanned_at", "hosts"}
    assert doc["fleet"] == [str(fleet)]
    [host] = doc["hosts"]
    assert {k: host[k] for k in ("machine", "host", "port", "verdict", "error")} == {
        "machine": "loop-1", "host": "127.0.0.1", "port": sshd.port, "verdict": "unknown",
        "error": ""}
    [key] = host["keys"]  # the test sshd has one host key: ed25519
    public = sshd.host_key.export_public_key().decode().strip()
    assert key == {"type": "ssh-ed25519", "fingerprint": keygen_fingerprint(sshd),
                   "verdict": "unknown", "known_fingerprints": [], "known_in": [],
                   "key_line": f"[127.0.0.1]:{sshd.port} {public}"}
    assert not (fake_home / ".ssh").exists()

    record = home.data / "host-key-scan.json"
    assert record.stat().st_mode & 0o777 == 0o600
    assert home.data.stat().st_mode & 0o777 == 0o700
    assert json.loads(record.read_text()) == doc

    table = cli("hostkeys", "scan", "--fleet", str(fleet), env=env)
    assert table.returncode == 1, table.stderr
    assert keygen_fingerprint(sshd) in table.stdout and "unknown" in table.stdout
    assert "hostkeys trust" in table.stdout


def test_trust_pins_the_scanned_key_of_one_host_and_a_swapped_key_is_refused(
    cli: CliRunner, home: Home, sshd: Sshd, second_sshd: Sshd, fake_home: Path
) -> None:
    fleet = home.config.parent / "hosts.toml"
    fleet.write_text(host_block("pinned", second_sshd) + host_block("other", sshd))
    env = {"HOME": str(fake_home)}
    assert cli("hostkeys", "scan", "--fleet", str(fleet), env=env).returncode == 1
    sshd_log = second_sshd.root / "sshd.log"
    assert "Accepted publickey" not in sshd_log.read_text()  # the scan never logged in

    trusted = cli("hostkeys", "trust", "pinned", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert keygen_fingerprint(second_sshd) in trusted.stdout
    public = second_sshd.host_key.export_public_key().decode().strip()
    assert known_hosts(fake_home).read_text() == f"[127.0.0.1]:{second_sshd.port} {public}\n"

    states = run_states(cli, fleet, env)
    assert states["pinned"]["state"] == "Succeeded", states
    assert "Accepted publickey" in sshd_log.read_text()  # as a run does
    assert states["other"]["state"] == "Skipped"
    assert "unknown host key" in states["other"]["error"]
    assert "fleetrun hostkeys scan" in states["other"]["error"]

    # The server's key changes after the review: the pin holds.
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    impostor.write_private_key(str(second_sshd.root / "host_key"))  # sshd re-reads it per
    states = run_states(cli, fleet, env)                              # connection (re-exec)
    assert states["pinned"]["state"] == "Skipped"
    assert "CHANGED" in states["pinned"]["error"]
    assert impostor.get_fingerprint() in states["pinned"]["error"]
    # The default file: ssh-keygen's own default, so no -f.
    assert f"`ssh-keygen -R '[127.0.0.1]:{second_sshd.port}'`" in states["pinned"]["error"]

    rescanned = cli("hostkeys", "scan", "--fleet", str(fleet), "-o", "json", env=env)
    assert rescanned.returncode == 2  # 2: a key CHANGED
    hosts = {h["machine"]: h for h in json.loads(rescanned.stdout)["hosts"]}
    assert hosts["pinned"]["verdict"] == "changed"
    pinned = second_sshd.host_key.get_fingerprint()
    assert hosts["pinned"]["keys"][0]["known_fingerprints"] == [pinned]
    refused = cli("hostkeys", "trust", "pinned", env=env)
    assert refused.returncode == 2
    assert f"`ssh-keygen -R '[127.0.0.1]:{second_sshd.port}'`" in refused.stderr
    assert known_hosts(fake_home).read_text() == f"[127.0.0.1]:{second_sshd.port} {public}\n"


def test_trust_all_shown_records_exactly_the_scanned_lines(
    cli: CliRunner, home: Home, sshd: Sshd, second_sshd: Sshd, fake_home: Path
) -> None:
    fleet = home.config.parent / "hosts.toml"
    fleet.write_text(host_block("one", sshd) + host_block("two", second_sshd))
    env = {"HOME": str(fake_home)}
    scanned = cli("hostkeys", "scan", "--fleet", str(fleet), "-o", "json", env=env)
    lines = sorted(k["key_line"] for h in json.loads(scanned.stdout)["hosts"] for k in h["keys"])
    assert len(lines) == 2

    trusted = cli("hostkeys", "trust", "--all-shown", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert sorted(known_hosts(fake_home).read_text().splitlines()) == lines
    assert {m["state"] for m in run_states(cli, fleet, env).values()} == {"Succeeded"}

    again = cli("hostkeys", "scan", "--fleet", str(fleet), env=env)
    assert again.returncode == 0, again.stdout  # 0: every key known
    assert "2 known" in again.stdout


def test_trust_names_only_scanned_hosts_and_errors_say_what_to_do(
    cli: CliRunner, home: Home, sshd: Sshd, fake_home: Path
) -> None:
    env = {"HOME": str(fake_home)}
    unscanned = cli("hostkeys", "trust", "loop-1", env=env)
    assert unscanned.returncode == 2
    assert "fleetrun hostkeys scan" in unscanned.stderr and "Traceback" not in unscanned.stderr

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]
    fleet = home.config.parent / "hosts.toml"
    fleet.write_text(host_block("loop-1", sshd) + host_block("dead", sshd, dead_port))
    scanned = cli("hostkeys", "scan", "--fleet", str(fleet), "-o", "json", env=env)
    assert scanned.returncode == 2  # 2: a host could not be scanned
    hosts = {h["machine"]: h for h in json.loads(scanned.stdout)["hosts"]}
    assert hosts["dead"]["verdict"] == "error" and hosts["dead"]["keys"] == []
    assert "cannot connect" in hosts["dead"]["error"]

    for name in ("nosuch", "loop-1 nosuch"):
        wrong = cli("hostkeys", "trust", *name.split(), env=env)
        assert wrong.returncode == 2
        assert "nosuch: not in the last scan" in wrong.stderr, wrong.stderr
        assert not known_hosts(fake_home).exists()  # all or nothing
    dead = cli("hostkeys", "trust", "dead", env=env)
    assert dead.returncode == 2 and "collected no key" in dead.stderr
    usage = cli("hostkeys", "trust", env=env)
    assert usage.returncode == 2 and "--all-shown" in usage.stderr
    assert not known_hosts(fake_home).exists()


def test_scan_of_a_fleet_without_ssh_hosts_says_so(cli: CliRunner, fake_home: Path) -> None:
    result = cli("hostkeys", "scan", "--fleet", "local", env={"HOME": str(fake_home)})
    assert result.returncode == 2
    assert "no SSH hosts" in result.stderr and "Traceback" not in result.stderr


def test_trust_records_into_the_hosts_own_user_known_hosts_file(
    cli: CliRunner, home: Home, sshd: Sshd, fake_home: Path
) -> None:
    """A Host block with its own UserKnownHostsFile: scan judges against that file, trust
    writes there (not to ~/.ssh/known_hosts), and the next scan and run find it known."""
    ssh = fake_home / ".ssh"
    ssh.mkdir(mode=0o700)
    (ssh / "config").write_text(
        f"Host pinned\n  HostName 127.0.0.1\n  Port {sshd.port}\n"
        "  UserKnownHostsFile ~/.ssh/pinned_hosts\n")
    env = {"HOME": str(fake_home)}
    hosts = ["--hosts", "pinned", "-l", sshd.user, "-i", str(sshd.client_key)]

    scanned = cli("hostkeys", "scan", *hosts, "-o", "json", env=env)
    assert scanned.returncode == 1, scanned.stderr
    trusted = cli("hostkeys", "trust", "--all-shown", env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert keygen_fingerprint(sshd) in trusted.stdout

    assert not known_hosts(fake_home).exists()
    pinned = (ssh / "pinned_hosts").read_text()
    assert f"[127.0.0.1]:{sshd.port} " in pinned or "pinned" in pinned, pinned
    again = cli("hostkeys", "scan", *hosts, "-o", "json", env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    ran = cli("run", *hosts, "--shell", "echo ok", "-o", "json", env=env)
    assert ran.returncode == 0, ran.stderr
    [machine] = json.loads(ran.stdout)["machines"]
    assert machine["stdout"] == "ok\n"


def test_strict_no_lets_a_changed_key_through_with_one_warning_per_host_on_stderr(
    cli: CliRunner, home: Home, sshd: Sshd, fake_home: Path
) -> None:
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    old = impostor.export_public_key().decode().strip()
    known = fake_home / "lab_known_hosts"
    known.write_text(f"[127.0.0.1]:{sshd.port} {old}\n")
    # Two aliases of one host: one warning, for the host.
    config = home.config.parent / "lab_ssh_config"
    config.write_text(f"""Host lab-a lab-b
    HostName 127.0.0.1
    Port {sshd.port}
    User {sshd.user}
    IdentityFile {sshd.client_key}
    UserKnownHostsFile {known}
    GlobalKnownHostsFile none
    StrictHostKeyChecking no
""")
    env = {"HOME": str(fake_home)}
    fleet = f"ssh-config:{config}"
    result = cli("run", "--fleet", fleet, "--shell", "echo ok", "-o", "json", env=env)
    assert result.returncode == 0, result.stderr
    states = {m["machine"]: m["state"] for m in json.loads(result.stdout)["machines"]}
    assert states == {"lab-a": "Succeeded", "lab-b": "Succeeded"}
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"[127.0.0.1]:{sshd.port}: CHANGED host key" in warnings[0]
    assert "StrictHostKeyChecking no" in warnings[0]
    assert sshd.host_key.get_fingerprint() in warnings[0]
    assert impostor.get_fingerprint() in warnings[0]
    assert known.read_text() == f"[127.0.0.1]:{sshd.port} {old}\n"  # never written over

    listed = cli("machines", "--fleet", fleet, env=env)
    assert listed.returncode == 0, listed.stderr
    assert sum(line.startswith("warning:") for line in listed.stderr.splitlines()) == 1
