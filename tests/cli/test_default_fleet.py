"""Which machines a command works on without --fleet: config.toml's ``fleet``, else the sandbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli.conftest import CliRunner, Home

UNIFORM_HOSTS = {"queue-ss/0": "queue-ss000000", "queue-ss/1": "queue-ss000001"}


def configure(home: Home, text: str) -> None:
    home.config.mkdir(parents=True, exist_ok=True)
    (home.config / "config.toml").write_text(text)


def names(stdout: str) -> list[str]:
    return sorted(m["name"] for m in json.loads(stdout))


def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text('[[hosts]]\nname = "web-1"\nhost = "192.0.2.10"\n\n'
                    '[[hosts]]\nname = "web-2"\nhost = "192.0.2.11"\n')
    return path


def test_config_fleet_is_the_default_for_commands_and_for_fleetrun_alone(
        cli: CliRunner, home: Home, tmp_path: Path) -> None:
    configure(home, f'fleet = ["{inventory(tmp_path)}", "local"]\n')
    listed = cli("machines", "--no-check", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert names(listed.stdout) == ["vm", "web-1", "web-2"]
    # --fleet still wins over the configured default.
    only_local = cli("machines", "--no-check", "--fleet", "local", "-o", "json")
    assert names(only_local.stdout) == ["vm"]


def test_fleetrun_alone_off_a_terminal_lists_the_fleet_it_would_open(
        cli: CliRunner, home: Home) -> None:
    configure(home, 'fleet = "local"\n')
    alone = cli()
    assert alone.returncode == 0, alone.stderr
    assert "vm" in alone.stdout and "sandbox" not in alone.stdout
    given = cli("--fleet", "local")
    assert given.returncode == 0, given.stderr
    assert "local" in given.stdout


def test_nothing_configured_means_the_sandbox(cli: CliRunner) -> None:
    listed = cli("machines", "--no-check", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    listed_names = names(listed.stdout)
    assert len(listed_names) == 22  # the sandbox's default fleet
    # Its scale sets' instances: a Uniform one shown as set/instance id, Flexible as the VM.
    assert {"queue-ss/0", "queue-ss/1"} <= set(listed_names)
    assert len([n for n in listed_names if n.startswith("api-flex_")]) == 2


def test_a_malformed_fleet_setting_is_named(cli: CliRunner, home: Home) -> None:
    for text in ("fleet = 3\n", "fleet = []\n", 'fleet = ["ok", ""]\n'):
        configure(home, text)
        for args in (("machines", "--no-check"), ()):
            result = cli(*args)
            assert result.returncode == 2, (text, result.stdout)
            assert "config.toml: fleet: give a source or a list of sources" in result.stderr
            assert "Traceback" not in result.stderr


def test_a_mixed_run_on_the_default_sandbox_fleet_succeeds_on_every_healthy_machine(
        cli: CliRunner) -> None:
    # With pwsh or without: Windows machines run the script, or are simulated and say so.
    result = cli("run", "--shell", 'echo "linux $(hostname) $(uname -n)"',
                 "--powershell", 'Write-Output "windows $env:COMPUTERNAME"', "-o", "json",
                 timeout=120)
    report = json.loads(result.stdout)
    by_state: dict[str, list[str]] = {}
    for machine in report["machines"]:
        by_state.setdefault(machine["state"], []).append(machine["machine"])
    # The four the default fleet makes unhealthy are skipped; everything else succeeds.
    assert sorted(by_state.pop("Skipped")) == ["db-02", "onprem-batch-02",
                                              "onprem-legacy-01", "onprem-locked-01",
                                              "onprem-monitor-01", "web-05"]
    assert list(by_state) == ["Succeeded"] and len(by_state["Succeeded"]) == 16
    simulated = shutil.which("pwsh") is None
    for machine in report["machines"]:
        name, lines = machine["machine"], machine["stdout"].splitlines()
        if machine["state"] == "Skipped":
            continue
        if machine["os"] == "linux":
            # Its own name, not this host's: a Uniform instance's is its computer name.
            host = UNIFORM_HOSTS.get(name, name)
            assert lines == [f"linux {host} {host}"]
        else:
            assert lines[-1] == f"windows {name}"
            assert lines[0].startswith("simulated: no pwsh on this host") is simulated


def test_a_run_on_a_scale_set_targets_its_instances_only(cli: CliRunner) -> None:
    listed = cli("machines", "--no-check", "--target", "scaleset:queue-ss", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert names(listed.stdout) == ["queue-ss/0", "queue-ss/1"]
    result = cli("run", "--shell", "echo on $(hostname)", "--target", "scaleset:queue-ss",
                 "-o", "json", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    got = {m["machine"]: (m["state"], m["stdout"].strip()) for m in report["machines"]}
    assert got == {"queue-ss/0": ("Succeeded", "on queue-ss000000"),
                   "queue-ss/1": ("Succeeded", "on queue-ss000001")}
    # Flexible members are ordinary VMs of their set: scaleset:api-flex picks them.
    flexible = cli("machines", "--no-check", "--target", "scaleset:api-flex", "-o", "json")
    assert [n.startswith("api-flex_") for n in names(flexible.stdout)] == [True, True]
