"""--run-as over SSH through sudo and su, against the real loopback sshd.

The sshd fixture's login user has a sudoers rule to one account without a password and to
another with its own password (bench/loopback_sshd.py), and that second account has a
password for su.
"""

from __future__ import annotations

import asyncio
import pwd
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.loopback_sshd import (
    BECOME_NOPASSWD_USER,
    BECOME_PASSWORD,
    BECOME_PASSWORD_USER,
    SUDO_LOG,
)
from core.backends.ssh import SshBackend, SshSettings
from core.events import Finished, MachineEvent, OutputAppended
from core.inventory.ansible_file import load_ansible
from core.inventory.errors import InventoryError
from core.inventory.toml_inventory import load_toml_inventory
from core.model import Command, CommandId, Machine, Parameter, RunState, Stream
from tests.sshd import Sshd

pytestmark = pytest.mark.skipif(shutil.which("sudo") is None, reason="sudo is not installed")

WHOAMI = 'id -un; echo "home=$HOME"; printf "%s" "$SECRET" | wc -c'


async def collect(ssh: SshBackend, machine: Machine, command: Command,
                  run_id: str = "become") -> list[MachineEvent]:
    async def drain() -> list[MachineEvent]:
        return [event async for event in ssh.run(machine, command, run_id=run_id)]

    try:
        return await asyncio.wait_for(drain(), 60)
    finally:
        await ssh.aclose()


def outcome(events: list[MachineEvent]) -> tuple[Finished, str, str]:
    done = [e for e in events if isinstance(e, Finished)]
    assert len(done) == 1
    out = {s: b"".join(e.data for e in events if isinstance(e, OutputAppended) and e.stream is s)
           for s in Stream}
    return done[0], out[Stream.STDOUT].decode(), out[Stream.STDERR].decode()


def shell(script: str, user: str, password: str = "") -> Command:
    return Command(CommandId.SHELL, script, timeout=60, run_as_user=user,
                   run_as_password=password)


async def test_sudo_without_a_password_runs_as_the_user(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    command = shell(WHOAMI, BECOME_NOPASSWD_USER)
    result, out, err = outcome(await collect(ssh, sshd.machine(), command))
    assert result.state is RunState.SUCCEEDED, (result.error, err)
    assert out.splitlines()[0] == BECOME_NOPASSWD_USER
    assert f"home=/home/{BECOME_NOPASSWD_USER}" in out  # sudo -H
    assert "BECOME-SUCCESS" not in out + err


async def test_sudo_with_a_password_feeds_it_and_masks_it(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    script = f"id -un; echo {BECOME_PASSWORD}; echo canary-{BECOME_PASSWORD}-end >&2"
    events = await collect(ssh, sshd.machine(), shell(script, BECOME_PASSWORD_USER,
                                                       BECOME_PASSWORD))
    result, out, err = outcome(events)
    assert result.state is RunState.SUCCEEDED, (result.error, err)
    assert out.splitlines()[0] == BECOME_PASSWORD_USER
    # The backend hands the bytes on as printed; the fan-out masks them at ingest, which
    # knows the password as a secret of the command.
    assert BECOME_PASSWORD in shell("", "u", BECOME_PASSWORD).secret_values()
    assert "password:" not in out + err  # sudo's prompt is not the script's output
    # sudo logs every command line it runs: the password and the script are on none.
    assert not [line for line in _sudo_log() if BECOME_PASSWORD in line or "canary-" in line]


async def test_a_wrong_sudo_password_fails_once_with_a_clear_reason(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    run_id = f"wrong{secrets.token_hex(6)}"
    result, out, _ = outcome(await collect(ssh, sshd.machine(),
                                           shell("echo ran", BECOME_PASSWORD_USER, "wrong"),
                                           run_id))
    assert result.state is RunState.FAILED
    assert result.error == "sudo: incorrect password"
    assert "ran" not in out
    # sudo's log line for this run, once sudo has seen the channel close: one attempt only.
    deadline = time.monotonic() + 30
    while not (mine := [line for line in _sudo_log() if run_id in line]):
        assert time.monotonic() < deadline, "sudo logged nothing about the run"
        await asyncio.sleep(0.1)
    assert len(mine) == 1 and " 1 incorrect password attempt " in mine[0], mine


def _sudo_log() -> list[str]:
    try:
        return SUDO_LOG.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []


async def test_sudo_needing_a_password_that_was_not_given_says_so(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    result, _, _ = outcome(await collect(ssh, sshd.machine(),
                                         shell("echo ran", BECOME_PASSWORD_USER)))
    assert result.state is RunState.FAILED
    assert "a password is required" in result.error
    assert "--run-as-password" in result.error


async def test_su_with_the_target_users_password(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts, become_method="su"))
    result, out, err = outcome(await collect(ssh, sshd.machine(),
                                             shell(WHOAMI, BECOME_PASSWORD_USER, BECOME_PASSWORD)))
    assert result.state is RunState.SUCCEEDED, (result.error, err)
    assert out.splitlines()[0] == BECOME_PASSWORD_USER


async def test_a_wrong_su_password_fails(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts, become_method="su"))
    result, out, _ = outcome(await collect(ssh, sshd.machine(),
                                           shell("echo ran", BECOME_PASSWORD_USER, "wrong")))
    assert result.state is RunState.FAILED
    assert result.error == "su: incorrect password"
    assert "ran" not in out


async def test_parameters_reach_the_script_through_sudo(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    command = replace(shell(WHOAMI, BECOME_NOPASSWD_USER),
                      parameters=(Parameter("SECRET", "abcde", protected=True),))
    result, out, err = outcome(await collect(ssh, sshd.machine(), command))
    assert result.state is RunState.SUCCEEDED, (result.error, err)
    assert out.splitlines()[-1].strip() == "5"


async def test_a_cancelled_become_run_stops_on_the_host(sshd: Sshd) -> None:
    ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
    machine = sshd.machine()
    command = shell("echo started; sleep 313", BECOME_NOPASSWD_USER)
    events: list[MachineEvent] = []
    try:
        async with asyncio.timeout(60):
            async for event in ssh.run(machine, command, run_id="cancel"):
                events.append(event)
                if isinstance(event, OutputAppended) and b"started" in event.data:
                    await ssh.cancel(machine, "cancel")
    finally:
        await ssh.aclose()
    result, _, _ = outcome(events)
    assert result.state is RunState.CANCELED
    # Stopped on the host too, although the login user cannot signal the become user.
    uid = pwd.getpwnam(BECOME_NOPASSWD_USER).pw_uid
    deadline = time.monotonic() + 30
    while _sleepers(uid):
        assert time.monotonic() < deadline, "the script outlived its cancel"
        await asyncio.sleep(0.1)


def _sleepers(uid: int) -> list[Path]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid == uid and (proc / "cmdline").read_bytes() == b"sleep\0313\0":
                found.append(proc)
        except OSError:
            continue
    return found


async def test_ansible_inventory_become_keys(sshd: Sshd, tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(
        "[web]\n"
        f"nopw ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={sshd.user} "
        f"ansible_ssh_private_key_file={sshd.client_key} ansible_become=true "
        f"ansible_become_user={BECOME_NOPASSWD_USER} ansible_become_method=sudo\n"
        f"plain ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={sshd.user} "
        f"ansible_ssh_private_key_file={sshd.client_key} ansible_become=false "
        f"ansible_become_user={BECOME_NOPASSWD_USER}\n")
    machines = {m.name: m for m in load_ansible(inventory, yaml=False)}
    assert machines["nopw"].ssh is not None and machines["plain"].ssh is not None
    assert machines["nopw"].ssh.become_user == BECOME_NOPASSWD_USER
    assert machines["plain"].ssh.become_user == ""
    for name, expected in (("nopw", BECOME_NOPASSWD_USER), ("plain", sshd.user)):
        ssh = SshBackend(SshSettings(known_hosts=sshd.known_hosts))
        result, out, err = outcome(await collect(ssh, machines[name],
                                                 Command(CommandId.SHELL, "id -un", timeout=60)))
        assert result.state is RunState.SUCCEEDED, (result.error, err)
        assert out.strip() == expected


def test_toml_inventory_become_keys(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text('[defaults]\nbecome = true\n\n[[hosts]]\nname = "a"\n\n'
                    '[[hosts]]\nname = "b"\nbecome_user = "app"\nbecome_method = "su"\n\n'
                    '[[hosts]]\nname = "c"\nbecome = false\n')
    endpoints = {m.name: m.ssh for m in load_toml_inventory(path)}
    assert [(e.become_user, e.become_method) for e in endpoints.values() if e is not None] == [
        ("root", ""), ("app", "su"), ("", "")]
    path.write_text('[[hosts]]\nname = "a"\nbecome = true\nbecome_method = "doas"\n')
    with pytest.raises(InventoryError, match=r"hosts\[0\]\.become_method.*'sudo' or 'su'"):
        load_toml_inventory(path)
