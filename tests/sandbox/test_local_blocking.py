"""Arc machines whose own agent refuses Run Command (run-command-handlers.md 6), as the
sandbox plays them: the fleet file's azcmagent settings, the machine GET that reports them
(HybridCompute 2025-01-13 ``agentConfiguration``), and a run refused as a failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.sandbox.fleet import FleetFileError, default_fleet
from tests.sandbox.arm_client import ARC, Api, make_fleet, sandbox_api

ARC_LINUX = {"kind": "arc", "os": "linux", "agent_version": "1.45.02800.0"}


async def arc_configuration(api: Api, name: str) -> dict[str, Any]:
    response = await api.client.get(Api.arc_path(name), params={"api-version": ARC})
    assert response.status_code == 200, response.text
    configuration: dict[str, Any] = response.json()["properties"]["agentConfiguration"]
    return configuration


async def test_the_machine_get_reports_the_agents_local_settings(tmp_path: Path) -> None:
    fleet = make_fleet(
        {"name": "plain", **ARC_LINUX},
        {"name": "locked", **ARC_LINUX,
         "extensions_blocklist": ["microsoft.cplat.core/runcommandhandlerlinux"],
         "extensions_allowlist": ["Allow/None"], "extensions_enabled": False,
         "config_mode": "monitor"})
    async with sandbox_api(fleet, tmp_path) as api:
        plain = await arc_configuration(api, "plain")
        locked = await arc_configuration(api, "locked")
    assert (plain["extensionsBlockList"], plain["extensionsAllowList"]) == ([], [])
    assert (plain["extensionsEnabled"], plain["configMode"]) == ("true", "full")
    # Lists of ConfigurationExtension objects; extensionsEnabled a string, as the spec says.
    assert locked["extensionsBlockList"] == [
        {"publisher": "microsoft.cplat.core", "type": "runcommandhandlerlinux"}]
    assert locked["extensionsAllowList"] == [{"publisher": "Allow", "type": "None"}]
    assert (locked["extensionsEnabled"], locked["configMode"]) == ("false", "monitor")


@pytest.mark.parametrize(("settings", "named"), [
    ({"extensions_blocklist": ["Microsoft.CPlat.Core/RunCommandHandlerLinux"]},
     "extensions.blocklist"),
    ({"extensions_allowlist": ["Allow/None"]}, "extensions.allowlist"),
    ({"extensions_enabled": False}, "extensions.enabled false"),
    ({"config_mode": "monitor"}, "config.mode monitor"),
])
async def test_a_run_on_a_machine_that_blocks_the_handler_fails_without_running(
        tmp_path: Path, settings: dict[str, Any], named: str) -> None:
    fleet = make_fleet({"name": "locked", **ARC_LINUX, **settings})
    path = Api.arc_path("locked")
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(path, "hello", {"source": {"script": "touch ran"}})
        assert put.status_code == 201, put.text
        body = await api.wait_for(path, "hello",
                                  lambda b: b["properties"]["provisioningState"] == "Failed")
        status = (await api.client.get(put.headers["Azure-AsyncOperation"])).json()
    assert status["status"] == "Failed"
    assert status["error"]["code"] == "ExtensionBlocked"
    assert named in status["error"]["message"]
    assert "RunCommandHandlerLinux" in status["error"]["message"]
    assert body["properties"]["instanceView"]["executionState"] == "Unknown"
    assert not list(tmp_path.rglob("ran"))


async def test_a_list_naming_another_extension_lets_the_run_through(tmp_path: Path) -> None:
    fleet = make_fleet({"name": "arc-1", **ARC_LINUX, "extensions_blocklist": [
        "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"], "extensions_allowlist": [
        "Microsoft.Azure.Monitor/AzureMonitorLinuxAgent",
        "microsoft.cplat.core/runcommandhandlerlinux"]})
    path = Api.arc_path("arc-1")
    async with sandbox_api(fleet, tmp_path) as api:
        put = await api.put(path, "hello", {"source": {"script": "echo hi"}})
        assert put.status_code == 201, put.text
        body = await api.wait_for(path, "hello",
                                  lambda b: b["properties"]["provisioningState"] == "Succeeded")
    assert body["properties"]["instanceView"]["output"] == "hi\n"


@pytest.mark.parametrize(("machine", "message"), [
    ({"kind": "vm", "config_mode": "monitor"},
     "machines[0].config_mode: is for Arc machines (azcmagent config)"),
    ({"kind": "arc", "config_mode": "audit"},
     "machines[0].config_mode: 'audit' is not allowed; allowed: full, monitor"),
    ({"kind": "arc", "extensions_blocklist": "microsoft.cplat.core/runcommandhandlerlinux"},
     "machines[0].extensions_blocklist: a list of extensions as Publisher/Type"),
    ({"kind": "arc", "extensions_allowlist": ["runcommandhandlerlinux"]},
     "machines[0].extensions_allowlist: a list of extensions as Publisher/Type"),
    ({"kind": "arc", "extensions_enabled": "no"}, "machines[0].extensions_enabled: true or false"),
])
def test_bad_agent_settings_name_the_field(machine: dict[str, Any], message: str) -> None:
    with pytest.raises(FleetFileError) as caught:
        make_fleet({"name": "m", "os": "linux", **machine})
    assert str(caught.value).startswith(message)


def test_the_default_fleet_blocks_on_one_machine_by_blocklist_and_one_by_monitor_mode() -> None:
    machines = {m.name: m for m in default_fleet().machines}
    assert machines["onprem-locked-01"].extensions_blocklist == (
        "microsoft.cplat.core/runcommandhandlerlinux",)
    assert machines["onprem-monitor-01"].config_mode == "monitor"
