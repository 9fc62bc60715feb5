"""The OpenSSH options asyncssh skips, read per host as ssh reads them (no server needed)."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from core.backends.known_hosts_files import KnownHostsFiles
from core.backends.ssh_host_options import (
    DEFAULT_USER_KNOWN_HOSTS,
    HostOptionError,
    StrictMode,
    agent_path,
    connection_attempts,
    known_hosts_paths,
    strict_mode,
)
from core.backends.ssh_hostkeys import host_key_algorithms
from core.backends.ssh_jump import JumpError, host_config
from core.trusted_files import UntrustedFileError

CONFIG = """
Host strict
    StrictHostKeyChecking yes
    ConnectionAttempts 3
    UserKnownHostsFile ~/kh/%h-%p %d/second
    GlobalKnownHostsFile none

Host strict lax
    StrictHostKeyChecking no
    ServerAliveInterval 9
    ServerAliveCountMax 2
    IdentityAgent SSH_AUTH_SOCK

Host *
    HostName %h.example.com
    StrictHostKeyChecking accept-new
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config"
    path.write_text(CONFIG)
    return path


def test_first_value_wins_and_tokens_expand_in_the_known_hosts_lists(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")
    home = Path("~").expanduser()
    strict = host_config([str(config)], "strict")
    assert strict.strict_host_key_checking is StrictMode.YES
    assert strict.connection_attempts == 3
    assert strict.user_known_hosts == (home / "kh/strict.example.com-22", home / "second")
    assert strict.global_known_hosts == ()
    lax = host_config([str(config)], "lax")
    assert lax.strict_host_key_checking is StrictMode.NO
    assert (lax.server_alive_interval, lax.server_alive_count_max) == (9, 2)
    assert lax.agent_path == "/run/agent.sock"  # the variable, not a file named SSH_AUTH_SOCK
    assert lax.connection_attempts == 1
    assert lax.user_known_hosts == tuple(Path(p).expanduser() for p in DEFAULT_USER_KNOWN_HOSTS)
    other = host_config([str(config)], "other")
    assert other.strict_host_key_checking is StrictMode.ACCEPT_NEW
    assert other.server_alive_interval is None


@pytest.mark.parametrize(("value", "mode"), [
    ("yes", StrictMode.YES), ("true", StrictMode.YES), ("accept-new", StrictMode.ACCEPT_NEW),
    ("no", StrictMode.NO), ("off", StrictMode.NO), ("FALSE", StrictMode.NO),
    ("ask", StrictMode.ASK), (None, None)])
def test_strict_host_key_checking_values(value: str | None, mode: StrictMode | None) -> None:
    assert strict_mode(value, "h") is mode


def test_bad_values_are_one_line_naming_host_option_and_choices(tmp_path: Path) -> None:
    with pytest.raises(HostOptionError, match=r"^h: ssh config StrictHostKeyChecking maybe: "):
        strict_mode("maybe", "h")
    with pytest.raises(HostOptionError, match="ConnectionAttempts 0: use a whole number"):
        connection_attempts("0", "h")
    path = tmp_path / "config"
    path.write_text("Host h\n    ConnectionAttempts many\n")
    with pytest.raises(JumpError, match="ConnectionAttempts many"):
        host_config([str(path)], "h")


def test_identity_agent_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_AUTH_SOCK", "/a.sock")
    monkeypatch.setenv("MY_AGENT", "/b.sock")
    assert agent_path(None) == "/a.sock"
    assert agent_path("none") == ""
    assert agent_path("SSH_AUTH_SOCK") == "/a.sock"
    assert agent_path("$MY_AGENT") == "/b.sock"
    assert agent_path("~/c.sock") == str(Path("~/c.sock").expanduser())


def test_known_hosts_none_is_no_file_and_unset_is_the_default() -> None:
    assert known_hosts_paths([], DEFAULT_USER_KNOWN_HOSTS) == ()
    assert known_hosts_paths(None, ("~/x",)) == (Path("~/x").expanduser(),)


def test_a_key_in_any_file_trusts_and_a_revoked_line_anywhere_revokes(tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode().strip()
    first, second = tmp_path / "first", tmp_path / "second"
    second.write_text(f"host.example {public}\n")
    files = KnownHostsFiles().set_for([first, second], [])
    trusted, _, revoked, *_ = files.load().match("host.example", "", None)
    assert [k.get_fingerprint() for k in trusted] == [key.get_fingerprint()]
    assert not revoked
    first.write_text(f"@revoked * {public}\n")  # the mtime cache notices the new file
    _, _, revoked, *_ = files.load().match("host.example", "", None)
    assert [k.get_fingerprint() for k in revoked] == [key.get_fingerprint()]
    assert files.add([f"new.example {public}"])
    assert "new.example" in first.read_text() and "new.example" not in second.read_text()


def test_a_known_hosts_file_others_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.write_text("")
    shared.chmod(0o646)
    with pytest.raises(UntrustedFileError, match="chmod go-w"):
        KnownHostsFiles().set_for([shared], []).load()


def test_certificates_are_asked_for_only_where_a_ca_line_matches() -> None:
    ca = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    host = asyncssh.generate_private_key("ecdsa-sha2-nistp256")
    known = asyncssh.import_known_hosts(
        f"@cert-authority *.lab {ca}\n"
        f"web.prod {host.export_public_key().decode().strip()}\n")
    assert host_key_algorithms(known, "db.lab", 22) is None
    assert host_key_algorithms(known, "web.prod", 22) == ["ecdsa-sha2-nistp256"]
    unknown = host_key_algorithms(known, "new.prod", 22)
    assert unknown and not any("cert" in a for a in unknown)

