"""A changed host key's message names the file that holds the old key, against the real sshd.

ssh-keygen -R edits ~/.ssh/known_hosts unless told ``-f FILE``; a host with its own
UserKnownHostsFile (or an old key in a global file) needs the ``-f``, or the hint removes
nothing. The run's error and the scan (which ``hostkeys trust`` prints from) say the same.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bench.loopback_sshd import Sshd
from core.backends.host_keys import HostKeyProblem, KeyVerdict
from core.host_key_scan import ScanVerdict
from core.model import HealthStatus
from tests.ssh.test_ssh_known_hosts import (
    NO_GLOBAL,
    backend,
    block,
    closing,
    health,
    machine,
    other_key_line,
)


async def changed_problem(tmp_path: Path, sshd: Sshd, *options: str) -> tuple[
        HostKeyProblem, list[str]]:
    """The run's problem and the scan's removal commands for the sshd's host."""
    ssh = backend(tmp_path, block(sshd, *options))
    async with closing(ssh):
        assert (await health(ssh)).status is HealthStatus.NOT_READY
        problems = list(ssh.host_key_problems().values())
        assert [p.verdict for p in problems] == [KeyVerdict.CHANGED]
        scan = await ssh.scan_host_keys(machine())
        assert scan.verdict is ScanVerdict.CHANGED
        changed = [k for k in scan.keys if k.verdict is ScanVerdict.CHANGED]
        return problems[0], changed[0].removal_commands(scan.where)


async def test_a_hosts_own_known_hosts_file_is_named_with_f(tmp_path: Path, sshd: Sshd) -> None:
    known = tmp_path / "lab known_hosts"
    known.write_text(other_key_line(sshd, tmp_path) + "\n")
    problem, scan_commands = await changed_problem(
        tmp_path, sshd, f'UserKnownHostsFile "{known}"', NO_GLOBAL)
    expected = f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {shlex.quote(str(known))}"
    assert f"`{expected}`" in problem.message()
    assert scan_commands == [expected]


async def test_the_default_file_needs_no_f(tmp_path: Path, sshd: Sshd,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)
    monkeypatch.setenv("HOME", str(home))
    (home / ".ssh" / "known_hosts").write_text(other_key_line(sshd, tmp_path) + "\n")
    problem, scan_commands = await changed_problem(tmp_path, sshd, NO_GLOBAL)
    expected = f"ssh-keygen -R '[127.0.0.1]:{sshd.port}'"
    assert f"`{expected}`" in problem.message()
    assert scan_commands == [expected]


async def test_an_old_key_in_the_global_file_names_that_file(tmp_path: Path,
                                                              sshd: Sshd) -> None:
    mine, global_file = tmp_path / "mine", tmp_path / "ssh_known_hosts"
    global_file.write_text(other_key_line(sshd, tmp_path) + "\n")
    problem, scan_commands = await changed_problem(
        tmp_path, sshd, f"UserKnownHostsFile {mine}", f"GlobalKnownHostsFile {global_file}")
    expected = f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {global_file}"
    assert f"`{expected}`" in problem.message()
    assert problem.record_file == str(mine)
    assert scan_commands == [expected]
