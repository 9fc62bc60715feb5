"""``fleetrun run --hosts``: ad-hoc SSH hosts against the loopback sshd, with ~/.ssh/config
applied to each name, login defaults, per-host ports, ``--target``, and bad input."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from core.fanout import plan_run
from core.fleet import resolve_fleet
from core.fleet.spec_text import join_fleet_specs
from core.journal_store import Journal
from core.model import Command, CommandId, RunState
from tests.cli.conftest import CliRunner, Home
from tests.sshd import Sshd


def fake_home(home: Home, sshd: Sshd) -> Path:
    """A HOME whose ~/.ssh/config sends ``loop*`` to the loopback sshd (no user in it)."""
    root = home.config.parent / "home"
    (root / ".ssh").mkdir(parents=True)
    (root / ".ssh" / "config").write_text(
        f"Host loop*\n  HostName 127.0.0.1\n  Port {sshd.port}\n")
    return root


def test_hosts_run_on_each_alias_with_the_ssh_config_and_defaults_applied(
    cli: CliRunner, home: Home, sshd: Sshd
) -> None:
    env = {"HOME": str(fake_home(home, sshd))}
    hosts = f"loop[1-4]!loop2,127.0.0.1:{sshd.port}"
    result = cli("run", "--hosts", hosts, "-l", sshd.user, "-i", str(sshd.client_key),
                 "--target", "!name:loop4", "--accept-new-host-keys",
                 "--shell", 'echo "$(whoami) ok"', "-o", "json", env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    machines = {m["machine"]: m for m in json.loads(result.stdout)["machines"]}
    # loop[1-4]!loop2 minus --target's loop4, plus the literal address on its own port.
    assert sorted(machines) == sorted(["loop1", "loop3", f"127.0.0.1:{sshd.port}"])
    for machine in machines.values():
        assert machine["state"] == "Succeeded", machine
        assert machine["stdout"] == f"{sshd.user} ok\n"

    # A port written in the name wins over --port; the one without a port gets --port's
    # (1: nothing listens there), so exactly that host fails.
    mixed = cli("run", "--hosts", f"loop1,127.0.0.1:{sshd.port}", "--port", "1",
                "-l", sshd.user, "-i", str(sshd.client_key), "--shell", "true", "-o", "json",
                env=env, timeout=120)
    assert mixed.returncode == 1, mixed.stderr
    states = {m["machine"]: m["state"] for m in json.loads(mixed.stdout)["machines"]}
    assert states[f"127.0.0.1:{sshd.port}"] == "Succeeded"
    assert states["loop1"] != "Succeeded"


def test_the_ssh_fleet_source_lists_its_hosts_in_clustershell_order(
    cli: CliRunner, home: Home
) -> None:
    result = cli("machines", "--fleet", "ssh:web[01-03].prod,ops@db-[1-2]:2222",
                 "--no-check", "-o", "json")
    assert result.returncode == 0, result.stderr
    names = [m["name"] for m in json.loads(result.stdout)]
    assert names == ["ops@db-1:2222", "ops@db-2:2222", "web01.prod", "web02.prod",
                     "web03.prod"]


def test_bad_hosts_and_defaults_are_one_line_errors(cli: CliRunner, home: Home) -> None:
    cases = [
        (("--hosts", "web[5-3]"), "hosts 'web[5-3]': at character 5: '5-3' goes down"),
        (("--hosts", "web[01-100]"), "padding length mismatch"),
        (("--hosts", "web1", "--port", "0"), "--port '0': use 1 to 65535"),
        (("--hosts", "web1", "-i", str(home.config / "nope")), "no such file"),
        (("--fleet", "ssh:n[1-3],"), "nothing after ','"),
    ]
    for args, message in cases:
        result = cli("run", *args, "--shell", "true")
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_attach_reopens_an_ad_hoc_node_set_with_commas(cli: CliRunner, home: Home) -> None:
    """An interrupted ``ssh:a,b`` run: attach opens the same two hosts (not an "unknown
    source" ``b``) and says that SSH runs cannot be followed again."""
    hosts = "ssh:loop1,loop2"
    machines = asyncio.run(resolve_fleet(hosts).load())
    gone = subprocess.Popen(["true"])
    gone.wait()
    run = plan_run([(m, Command(CommandId.SHELL, "sleep 600")) for m in machines],
                   fleet=join_fleet_specs([hosts]))
    run.pid = gone.pid  # the process that followed it is gone: the run is interrupted
    for machine in machines:
        run.machines[machine.id].state = RunState.RUNNING
    with Journal(home.data / "journal.sqlite3") as journal:
        journal.record_run(run)

    attached = cli("attach", run.run_id, timeout=120)
    assert attached.returncode == 2, attached.stderr
    assert "unknown source" not in attached.stderr
    assert "2 machine(s) ran over SSH or locally and cannot be followed" in attached.stderr
    assert "Traceback" not in attached.stderr
