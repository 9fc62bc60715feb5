"""An Arc agent too old for run commands says how to upgrade it, as Learn documents it.

The Linux command is run in bash with stand-ins for sudo and the package managers, so each
distribution family is shown to get its own documented upgrade and nothing else.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from core.azure.agent_upgrade import upgrade_commands
from core.azure.machine_health import arc_health
from core.model import HealthStatus, OsType


def test_an_old_linux_agent_gets_the_package_upgrade_as_its_remedy() -> None:
    health = arc_health("Connected", "1.29.02286.0", os_type=OsType.LINUX)
    assert health.status is HealthStatus.AGENT_TOO_OLD
    [command] = health.remedy
    for documented in ("sudo apt update && sudo apt upgrade azcmagent",
                       "sudo zypper refresh && sudo zypper update azcmagent",
                       "sudo yum update azcmagent"):
        assert documented in command


def test_an_old_windows_agent_gets_the_installer_download_and_msiexec() -> None:
    health = arc_health("Connected", "1.32.0.0", os_type=OsType.WINDOWS)
    assert health.status is HealthStatus.AGENT_TOO_OLD
    assert health.remedy == (
        "Invoke-WebRequest -Uri https://aka.ms/AzureConnectedMachineAgent "
        "-OutFile AzureConnectedMachineAgent.msi",
        "msiexec.exe /i AzureConnectedMachineAgent.msi /qn /l*v azcmagentupgradesetup.log",
    )


def test_a_new_enough_agent_or_an_unknown_os_has_no_upgrade_remedy() -> None:
    assert arc_health("Connected", "1.33.0.0", os_type=OsType.LINUX).remedy == ()
    assert arc_health("Connected", "1.20.0.0").remedy == ()
    assert upgrade_commands(None) == ()


@pytest.mark.parametrize(("managers", "expected"), [
    (("apt",), ["apt update", "apt upgrade azcmagent"]),
    (("zypper",), ["zypper refresh", "zypper update azcmagent"]),
    (("yum",), ["yum update azcmagent"]),
], ids=["debian-ubuntu", "suse", "red-hat"])
def test_the_linux_command_runs_the_upgrade_of_the_machines_own_package_manager(
    tmp_path: Path, managers: tuple[str, ...], expected: list[str]
) -> None:
    log = tmp_path / "ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stubs = {"sudo": '"$@"', **{name: f'echo "{name} $*" >> {log}' for name in managers}}
    for name, body in stubs.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    [command] = upgrade_commands(OsType.LINUX)
    # Only the stand-ins and the shell's builtins: no real package manager can be reached.
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "LANG": os.environ.get("LANG", "C")}
    done = subprocess.run(["/bin/bash", "-c", command], env=env, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == expected
