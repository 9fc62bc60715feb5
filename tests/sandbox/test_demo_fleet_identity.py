"""The demo fleet looks like a real one: Windows machines answer without pwsh, and every
simulated Linux machine calls itself by its own name."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from core.sandbox import host_name
from core.sandbox.fleet import default_fleet
from core.sandbox.stand_in import FIRST_LINE, NO_PWSH, printed_lines
from tests.sandbox.arm_client import ARC, COMPUTE, Api, make_fleet, sandbox_api

WIN_VM = {"name": "win-1", "kind": "vm", "os": "windows"}
WIN_ARC = {"name": "win-arc-1", "kind": "arc", "os": "windows", "agent_version": "1.45.02800.0"}
SCRIPT = ('param([string]$Name)\n'
          'Write-Output "Hello $Name from $env:COMPUTERNAME"\n'
          "Get-Service | Where-Object Status -eq Running | Out-Null\n"
          "hostname\n")

_real_which = shutil.which


@pytest.fixture
def no_pwsh(monkeypatch: pytest.MonkeyPatch) -> None:
    """This host has no pwsh, whatever is installed where the test runs."""
    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name == "pwsh" else _real_which(name, *args, **kwargs)

    monkeypatch.setattr(shutil, "which", which)


async def _machine_tags(api: Api, path: str) -> dict[str, str]:
    version = ARC if "HybridCompute" in path else COMPUTE
    response = await api.client.get(path, params={"api-version": version})
    assert response.status_code == 200, response.text
    tags: dict[str, str] = response.json()["tags"]
    return tags


@pytest.mark.usefixtures("no_pwsh")
@pytest.mark.parametrize(("machine", "path"), [(WIN_VM, Api.vm_path("win-1")),
                                               (WIN_ARC, Api.arc_path("win-arc-1"))])
async def test_windows_machine_without_pwsh_is_simulated_and_says_so(
    tmp_path: Path, machine: dict[str, str], path: str
) -> None:
    async with sandbox_api(make_fleet(machine), tmp_path) as api:
        put = await api.put(path, "ps", {
            "source": {"script": SCRIPT},
            "parameters": [{"name": "Name", "value": "World"}],
        })
        assert put.status_code == 201, put.text
        view = (await api.wait_for(path, "ps"))["properties"]["instanceView"]
        tags = await _machine_tags(api, path)
    assert (view["executionState"], view["exitCode"]) == ("Succeeded", 0), view
    name = machine["name"]
    assert view["output"] == f"{FIRST_LINE}Hello World from {name}\n{name}\n"
    assert view["output"].splitlines()[0].startswith(NO_PWSH)
    assert tags["sandbox"] == NO_PWSH  # what the machine details show


async def test_windows_machine_with_pwsh_runs_the_script_for_real(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    fake = bin_dir / "pwsh"
    fake.write_text("#!/bin/sh\necho \"real pwsh on $COMPUTERNAME\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    path = Api.vm_path("win-1")
    async with sandbox_api(make_fleet(WIN_VM), tmp_path) as api:
        assert (await api.put(path, "ps", {"source": {"script": SCRIPT}})).status_code == 201
        view = (await api.wait_for(path, "ps"))["properties"]["instanceView"]
        tags = await _machine_tags(api, path)
    assert view["output"] == "real pwsh on win-1\n"
    assert "sandbox" not in tags


def test_the_default_fleets_windows_machines_adapt_to_the_host() -> None:
    windows = [m for m in default_fleet().machines if m.os == "windows"]
    assert {m.kind for m in windows} == {"vm", "arc"}
    assert all(m.executor == "auto" for m in windows)


def test_the_stand_in_prints_what_print_only_lines_print() -> None:
    script = "\n".join([
        "$ErrorActionPreference = 'Stop'",
        "Write-Host 'single $quoted'",
        'echo "on $env:COMPUTERNAME as $User"',
        "Write-Output $(hostname)",
        '"a lone string"',
        "[Environment]::MachineName",
        "Get-ChildItem C:\\ | Select-Object -First 3",
        "echo done;",
    ])
    assert printed_lines(script, {"user": "ops"}, "win-9") == [
        "single $quoted", "on win-9 as ops", "win-9", "a lone string", "win-9", "done"]


NAME_SCRIPT = 'hostname; uname -n; uname -a | cut -d" " -f2; hostname -s'


@pytest.mark.parametrize("namespaces", [True, False], ids=["uts-namespace", "shims"])
async def test_each_linux_machine_answers_hostname_with_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, namespaces: bool
) -> None:
    if namespaces and not await host_name.uts_namespaces():
        pytest.skip("this host lets no process have a UTS namespace of its own")
    monkeypatch.setattr(host_name, "_namespaces", namespaces)
    fleet = make_fleet({"name": "web-01", "kind": "vm", "os": "linux"},
                       {"name": "db.prod-02", "kind": "vm", "os": "linux"})
    outputs = {}
    async with sandbox_api(fleet, tmp_path) as api:
        for name in ("web-01", "db.prod-02"):
            put = await api.put(Api.vm_path(name), "who", {"source": {"script": NAME_SCRIPT}})
            assert put.status_code == 201, put.text
        for name in ("web-01", "db.prod-02"):
            view = (await api.wait_for(Api.vm_path(name), "who"))["properties"]["instanceView"]
            assert view["executionState"] == "Succeeded", view
            outputs[name] = view["output"]
    assert outputs == {"web-01": "web-01\n" * 4,
                       "db.prod-02": "db.prod-02\n" * 3 + "db\n"}


async def test_the_shim_never_renames_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_name, "_namespaces", False)
    before = socket.gethostname()
    path = Api.vm_path("web-01")
    async with sandbox_api(make_fleet({"name": "web-01", "kind": "vm", "os": "linux"}),
                           tmp_path) as api:
        put = await api.put(path, "rename", {"source": {"script": "hostname pwned"}})
        assert put.status_code == 201, put.text
        view = (await api.wait_for(path, "rename"))["properties"]["instanceView"]
    assert view["executionState"] == "Failed"
    assert "cannot change" in view["error"]
    assert socket.gethostname() == before
