"""A real OpenSSH sshd on 127.0.0.1, for the tests and bench/ssh (``make test`` installs it).

It logs in a dedicated user (``fleetrun-ssh``, created when missing: the tests run as root
in CI) with a key made for the session; the host key is made too, and a known_hosts file
that trusts it. Settings follow shared/reference/test-tooling.md.

:func:`running_sshd` is the server as a plain context manager; the tests' ``sshd`` fixture
(tests/sshd.py) wraps it, skipping or failing where it cannot run. It lives with the
benchmarks, which time tools against it, and the tests import it from here: the benchmarks
never import the tests (their fixtures, pytest), and the top level of the repository stays
what it is.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core.model import Machine, MachineKind, OsType, SshEndpoint

SSHD = Path("/usr/sbin/sshd")
USER = "fleetrun-ssh"
START_TIMEOUT = 10.0
BECOME_NOPASSWD_USER = "fleetrun-nopw"
"""USER may run anything as this account through sudo without a password."""
BECOME_PASSWORD_USER = "fleetrun-pw"
"""USER may run anything as this account through sudo, or su, with this account's password
(sudo's ``targetpw`` for it): the login user keeps no password at all."""
BECOME_PASSWORD = "fleetrun-test-become-Pw.7"
"""BECOME_PASSWORD_USER's password, the only one the tests set. Fixed, not random: every pytest
worker starts its own sshd but they share the account, which can do nothing but be run as.
Password logins stay off in the test sshd."""
SUDOERS = Path("/etc/sudoers.d/fleetrun-tests")
SUDO_LOG = Path("/var/log/fleetrun-tests-sudo.log")
"""sudo's own log of USER's commands and failed password attempts, one line each."""
SUDOERS_RULES = (
    f"Defaults:{USER} lecture=never, logfile={SUDO_LOG}, loglinelen=0\n"
    f"{USER} ALL=({BECOME_NOPASSWD_USER}) NOPASSWD: ALL\n"
    f"Defaults>{BECOME_PASSWORD_USER} targetpw\n"
    f"{USER} ALL=({BECOME_PASSWORD_USER}) ALL\n"
)


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    host_key: asyncssh.SSHKey
    root: Path
    pid: int = 0
    """The listening sshd (``-D``): every connection's processes are its descendants."""

    def machine(self, name: str = "ssh-host", *, host: str = "127.0.0.1") -> Machine:
        return Machine(
            id=f"ssh:{name}", name=name, kind=MachineKind.SSH, os=OsType.LINUX,
            address=host, ssh=SshEndpoint(host, self.port, self.user, str(self.client_key)),
        )


def unavailable_reason() -> str | None:
    """Why a private sshd cannot run here, or None when it can."""
    if not SSHD.exists():
        return f"{SSHD} is not installed"
    if os.geteuid() != 0:
        return "the sshd tests log in as a test user, which needs root to set up"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], capture_output=True)
        if made.returncode not in (0, 9):  # 9: another pytest worker made it first
            raise RuntimeError(f"useradd {name}: {made.stderr.decode().strip()}") from None


def _ensure_become_accounts() -> None:
    """The accounts and sudoers rule the become tests need (only where sudo is installed)."""
    for name in (BECOME_NOPASSWD_USER, BECOME_PASSWORD_USER):
        _ensure_user(name)
    subprocess.run(["chpasswd"], input=f"{BECOME_PASSWORD_USER}:{BECOME_PASSWORD}\n".encode(),
                   check=True, capture_output=True)
    if not SUDOERS.parent.is_dir():
        return
    if not SUDOERS.exists() or SUDOERS.read_text() != SUDOERS_RULES:
        # Written beside, then renamed: sudo never reads half a rule from a racing worker.
        partial = SUDOERS.parent / f".fleetrun-tests.{os.getpid()}"
        partial.write_text(SUDOERS_RULES)
        partial.chmod(0o440)
        partial.rename(SUDOERS)


@contextlib.contextmanager
def running_sshd(root: Path, *, reexec: bool = True,
                 host_ca: Path | None = None) -> Iterator[Sshd]:
    """A private sshd on 127.0.0.1 with its keys and files in ``root``, stopped on exit.

    Needs root and /usr/sbin/sshd (see :func:`unavailable_reason`); creates the test user
    when missing. ``root`` is the caller's to remove.

    Args:
        root: Where its keys, config, log and known_hosts go.
        reexec: As sshd does by default, re-execute itself for every connection. False
            passes ``-r`` (OpenSSH before 9.8): connections are forked from the listener.
        host_ca: A CA private key: the host key is signed with it (``ssh-keygen -s -h``,
            principal 127.0.0.1) and served as a ``HostCertificate``.

    Raises:
        RuntimeError: sshd rejected its config or did not start listening in time.
    """
    _ensure_user(USER)
    _ensure_become_accounts()
    # sshd reads authorized_keys as the user: the folder must be open to it (not 0700).
    root.chmod(0o755)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    host_key.write_private_key(str(root / "host_key"))
    (root / "host_key").chmod(0o600)
    client_key.write_private_key(str(root / "client_key"))
    (root / "client_key").chmod(0o600)
    authorized = root / "authorized_keys"
    authorized.write_bytes(client_key.export_public_key())
    authorized.chmod(0o644)
    port = _free_port()
    (root / "known_hosts").write_text(
        f"[127.0.0.1]:{port} {host_key.export_public_key().decode().strip()}\n")
    certificate: list[str] = []
    if host_ca is not None:
        (root / "host_key.pub").write_bytes(host_key.export_public_key())
        subprocess.run(["ssh-keygen", "-q", "-s", str(host_ca), "-I", "fleetrun-test-host",
                        "-h", "-n", "127.0.0.1", str(root / "host_key.pub")],
                       check=True, capture_output=True)
        certificate.append(f"HostCertificate {root / 'host_key-cert.pub'}")
    config = root / "sshd_config"
    config.write_text("\n".join([*certificate,
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
        f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
        "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM yes", "StrictModes no", "UseDNS no",
        "PrintMotd no", "PrintLastLog no", "MaxStartups 1000:30:2000", "MaxSessions 64",
        f"AllowUsers {USER}", "",
    ]))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    checked = subprocess.run([str(SSHD), "-t", "-f", str(config)], capture_output=True)
    if checked.returncode != 0:
        raise RuntimeError(f"sshd rejected its config: {checked.stderr.decode().strip()}")
    with (root / "sshd.log").open("wb") as log:
        flags = [] if reexec else ["-r"]
        proc = subprocess.Popen([str(SSHD), "-D", "-e", *flags, "-f", str(config)], stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log_text = (root / "sshd.log").read_text()
                        raise RuntimeError(f"sshd did not start: {log_text}") from None
                    time.sleep(0.05)
            yield Sshd(port, USER, root / "client_key", root / "known_hosts", host_key, root,
                       proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
