"""SSH hosts through the CLI: an inventory file, host-key review, a protected value kept secret."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import asyncssh
import pytest

from bench.loopback_sshd import BECOME_PASSWORD, BECOME_PASSWORD_USER
from tests.cli.conftest import FLEETRUN, CliRunner, Home
from tests.contract.harness import command_lines
from tests.sshd import Sshd

CANARY = "canary-5d1e0c77-ssh-never-written"


def inventory(home: Home, sshd: Sshd) -> Path:
    path = home.config.parent / "hosts.toml"
    path.write_text(f"""
[[hosts]]
name = "loop-1"
host = "127.0.0.1"
port = {sshd.port}
user = "{sshd.user}"
identity_file = "{sshd.client_key}"
groups = ["lab"]
""")
    return path


def test_host_keys_are_reviewed_then_accepted_and_secrets_stay_secret(
    cli: CliRunner, home: Home, sshd: Sshd
) -> None:
    fake_home = home.config.parent / "home"
    fake_home.mkdir()
    env = {"HOME": str(fake_home), "FLEETRUN_SECRET_TOKEN": CANARY}
    hosts = str(inventory(home, sshd))
    script = 'printf "%s\\n" "${#TOKEN}"; echo "$GREETING from $(whoami)"'
    args = ("run", "--fleet", hosts, "--shell", script, "-p", "GREETING=hi", "-P", "TOKEN",
            "-o", "json")

    first = cli(*args, env=env)
    assert first.returncode == 1, first.stderr
    [machine] = json.loads(first.stdout)["machines"]
    assert machine["state"] == "Skipped"
    assert "unknown host key" in machine["error"]
    fingerprint = sshd.host_key.get_fingerprint()
    assert fingerprint in first.stderr and "--accept-new-host-keys" in first.stderr
    assert not (fake_home / ".ssh" / "known_hosts").exists()

    accepted = cli(*args, "--accept-new-host-keys", env=env)
    assert accepted.returncode == 0, accepted.stderr
    [machine] = json.loads(accepted.stdout)["machines"]
    assert machine["state"] == "Succeeded"
    assert machine["stdout"] == f"{len(CANARY)}\nhi from {sshd.user}\n"
    known = (fake_home / ".ssh" / "known_hosts").read_text()
    assert f"[127.0.0.1]:{sshd.port}" in known

    again = cli(*args, env=env)  # recorded: no flag needed any more
    assert again.returncode == 0, again.stderr

    impostor = asyncssh.generate_private_key("ssh-ed25519")
    (fake_home / ".ssh" / "known_hosts").write_text(
        f"[127.0.0.1]:{sshd.port} {impostor.export_public_key().decode()}")
    changed = cli(*args, "--accept-new-host-keys", env=env)
    assert changed.returncode == 1
    [machine] = json.loads(changed.stdout)["machines"]
    assert machine["state"] == "Skipped"
    assert "CHANGED" in machine["error"]
    assert fingerprint in machine["error"] and impostor.get_fingerprint() in machine["error"]

    for result in (first, accepted, again, changed):
        assert CANARY not in result.stdout + result.stderr
    for root in (home.data, home.config, fake_home):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert CANARY.encode() not in path.read_bytes(), path
    # Nothing of the runs is left on the host either (the host's reaper removes each run's
    # folder right after its script ends; give a loaded machine a few seconds).
    deadline = time.monotonic() + 5
    while leftovers := [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("fleetrun-*")
                        if p.is_dir() and p.owner() == sshd.user]:
        assert time.monotonic() < deadline, leftovers
        time.sleep(0.1)


def test_a_killed_ssh_run_leaves_nothing_on_the_host_and_nothing_to_attach(
    cli: CliRunner, home: Home, sshd: Sshd
) -> None:
    fake_home = home.config.parent / "home"
    fake_home.mkdir()
    env = home.env(HOME=str(fake_home))
    hosts = str(inventory(home, sshd))
    marker = f"fleetrun-killed-{os.getpid()}"
    runner = subprocess.Popen(
        [FLEETRUN, "run", "--fleet", hosts, "--accept-new-host-keys", "-o", "jsonl",
         "--shell", f'echo started; exec -a {marker} sleep 300'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        stdin=subprocess.DEVNULL,
    )
    assert runner.stdout is not None
    run_id = ""
    for line in runner.stdout:
        event = json.loads(line)
        run_id = run_id or event.get("run_id", "")
        if event["event"] == "output":
            break
    runner.kill()
    runner.wait(timeout=10)
    deadline = time.monotonic() + 5
    while any(marker.encode() in line for line in command_lines()):
        assert time.monotonic() < deadline, "the script outlived the client"
        time.sleep(0.1)
    result = cli("attach", run_id, env={"HOME": str(fake_home)})
    assert result.returncode == 2
    assert "nothing to attach to" in result.stderr and "Traceback" not in result.stderr


def test_run_as_through_sudo_keeps_the_password_secret(
    cli: CliRunner, home: Home, sshd: Sshd
) -> None:
    if shutil.which("sudo") is None:
        pytest.skip("sudo is not installed")
    fake_home = home.config.parent / "home"
    (fake_home / ".ssh").mkdir(parents=True)
    (fake_home / ".ssh" / "known_hosts").write_text(sshd.known_hosts.read_text())
    # The canary: the script prints the password (from a file only the target user reads),
    # which must come back masked, and nothing fleetrun writes may hold it.
    planted = sshd.root / f"become-canary-{os.getpid()}"
    planted.write_text(f"pw={BECOME_PASSWORD}\n")
    shutil.chown(planted, BECOME_PASSWORD_USER)
    planted.chmod(0o400)
    env = {"HOME": str(fake_home), "FLEETRUN_SECRET_RUN_AS_PASSWORD": BECOME_PASSWORD}
    hosts = str(inventory(home, sshd))
    try:
        result = cli("run", "--fleet", hosts, "--shell", f"id -un; cat {planted}",
                     "--run-as", BECOME_PASSWORD_USER, "--run-as-password", "-o", "json",
                     env=env)
        wrong = cli("run", "--fleet", hosts, "--shell", "echo never", "--run-as",
                    BECOME_PASSWORD_USER, "--run-as-password", "-o", "json",
                    env=env | {"FLEETRUN_SECRET_RUN_AS_PASSWORD": "not-" + BECOME_PASSWORD})
    finally:
        planted.unlink()
    assert result.returncode == 0, result.stderr
    [machine] = json.loads(result.stdout)["machines"]
    assert machine["stdout"] == f"{BECOME_PASSWORD_USER}\npw=***\n"
    assert wrong.returncode == 1
    [machine] = json.loads(wrong.stdout)["machines"]
    assert machine["state"] == "Failed"
    assert machine["error"] == "sudo: incorrect password"
    for run in (result, wrong):
        assert BECOME_PASSWORD not in run.stdout + run.stderr
    for root in (home.data, home.config, fake_home):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert BECOME_PASSWORD.encode() not in path.read_bytes(), path
