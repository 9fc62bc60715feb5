"""Run Command blocked by an Arc machine's own agent configuration (run-command-handlers.md 6).

The bodies are ``properties.agentConfiguration`` as HybridCompute 2025-01-13's Machines_Get
returns it: lists of ``{publisher, type}`` (null when unset), ``extensionsEnabled`` a string.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.azure.local_blocking import handler_name, local_blocks
from core.azure.machine_health import arc_health, arc_health_of
from core.model import HealthStatus, OsType

LINUX_HANDLER = {"publisher": "Microsoft.CPlat.Core", "type": "RunCommandHandlerLinux"}
MONITOR_AGENT = {"publisher": "Microsoft.Azure.Monitor", "type": "AzureMonitorLinuxAgent"}


def configuration(**changes: Any) -> dict[str, Any]:
    """The spec example's configuration (nothing blocked), with ``changes``."""
    return {"proxyUrl": "https://test.test", "incomingConnectionsPorts": ["22", "23"],
            "extensionsAllowList": None, "extensionsBlockList": None,
            "proxyBypass": ["proxy1", "proxy2"], "extensionsEnabled": "true",
            "guestConfigurationEnabled": "true", "configMode": "full", **changes}


def test_the_handler_names_are_azcmagents() -> None:
    assert handler_name(OsType.LINUX) == "microsoft.cplat.core/runcommandhandlerlinux"
    assert handler_name(OsType.WINDOWS) == "microsoft.cplat.core/runcommandhandlerwindows"


def test_the_spec_examples_configuration_blocks_nothing() -> None:
    assert local_blocks(configuration(), OsType.LINUX) == []
    assert local_blocks(configuration(extensionsAllowList=[], extensionsBlockList=[]),
                        OsType.WINDOWS) == []


@pytest.mark.parametrize("junk", [None, "full", [], {"configMode": 3}])
def test_a_missing_or_strange_configuration_blocks_nothing(junk: object) -> None:
    assert local_blocks(junk, OsType.LINUX) == []


def test_the_handler_on_the_blocklist_blocks_and_setting_the_list_without_it_lifts_it() -> None:
    blocks = local_blocks(configuration(extensionsBlockList=[LINUX_HANDLER]), OsType.LINUX)
    assert [b.reason for b in blocks] == [
        "microsoft.cplat.core/runcommandhandlerlinux is on the agent's extensions blocklist"]
    assert [b.unblock for b in blocks] == ['sudo azcmagent config set extensions.blocklist ""']


def test_lifting_a_blocklist_keeps_the_other_extensions_on_it() -> None:
    lowercase = {"publisher": "microsoft.cplat.core", "type": "runcommandhandlerlinux"}
    blocks = local_blocks(configuration(extensionsBlockList=[MONITOR_AGENT, lowercase]),
                          OsType.LINUX)
    assert [b.unblock for b in blocks] == [
        'sudo azcmagent config set extensions.blocklist '
        '"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent"']


def test_lists_naming_other_extensions_or_the_other_oss_handler_do_not_block() -> None:
    windows = {"publisher": "Microsoft.CPlat.Core", "type": "RunCommandHandlerWindows"}
    assert local_blocks(configuration(extensionsBlockList=[MONITOR_AGENT, windows]),
                        OsType.LINUX) == []
    allowed = configuration(extensionsAllowList=[MONITOR_AGENT, LINUX_HANDLER])
    assert local_blocks(allowed, OsType.LINUX) == []


def test_an_allowlist_without_the_handler_blocks_and_adding_it_lifts_it() -> None:
    blocks = local_blocks(configuration(extensionsAllowList=[MONITOR_AGENT]), OsType.LINUX)
    assert [b.reason for b in blocks] == [
        "the agent's extensions allowlist leaves out microsoft.cplat.core/runcommandhandlerlinux"]
    assert [b.unblock for b in blocks] == [
        'sudo azcmagent config set extensions.allowlist '
        '"Microsoft.Azure.Monitor/AzureMonitorLinuxAgent,'
        'microsoft.cplat.core/runcommandhandlerlinux"']


def test_allow_none_allows_nothing() -> None:
    none = {"publisher": "Allow", "type": "None"}
    blocks = local_blocks(configuration(extensionsAllowList=[none]), OsType.WINDOWS)
    assert [b.reason for b in blocks] == [
        "the agent's extensions allowlist is Allow/None (allows nothing)"]
    # Windows: an elevated prompt, no sudo.
    assert [b.unblock for b in blocks] == [
        'azcmagent config set extensions.allowlist '
        '"microsoft.cplat.core/runcommandhandlerwindows"']


def test_extensions_disabled_blocks() -> None:
    blocks = local_blocks(configuration(extensionsEnabled="false"), OsType.LINUX)
    assert [b.unblock for b in blocks] == ["sudo azcmagent config set extensions.enabled true"]
    assert "extension service is disabled" in blocks[0].reason


def test_monitor_mode_blocks() -> None:
    blocks = local_blocks(configuration(configMode="monitor"), OsType.WINDOWS)
    assert [b.unblock for b in blocks] == ["azcmagent config set config.mode full"]
    assert "monitor mode" in blocks[0].reason


def test_every_cause_is_named_in_the_order_to_lift_them() -> None:
    everything = configuration(configMode="Monitor", extensionsEnabled="False",
                               extensionsBlockList=[LINUX_HANDLER],
                               extensionsAllowList=[MONITOR_AGENT])
    assert [b.unblock.split()[4] for b in local_blocks(everything, OsType.LINUX)] == [
        "config.mode", "extensions.enabled", "extensions.blocklist", "extensions.allowlist"]


def test_a_connected_machine_that_blocks_is_blocked_with_its_remedy() -> None:
    health = arc_health("Connected", "1.45.02800.0",
                        agent_configuration=configuration(configMode="monitor"),
                        os_type=OsType.LINUX)
    assert health.status is HealthStatus.BLOCKED
    assert not health.runnable
    assert health.detail.startswith("blocked on the machine: the agent is in monitor mode")
    assert health.remedy == ("sudo azcmagent config set config.mode full",)
    assert health.agent_version == "1.45.02800.0"


def test_disconnection_and_an_old_agent_come_before_blocking() -> None:
    monitor = configuration(configMode="monitor")
    assert arc_health("Disconnected", "1.45.02800.0", agent_configuration=monitor,
                      os_type=OsType.LINUX).status is HealthStatus.DISCONNECTED
    assert arc_health("Connected", "1.29.02286.0", agent_configuration=monitor,
                      os_type=OsType.LINUX).status is HealthStatus.AGENT_TOO_OLD


def test_the_machine_get_body_is_read_with_its_os_type() -> None:
    body = {"properties": {"status": "Connected", "agentVersion": "1.45.02800.0",
                           "osType": "windows",
                           "agentConfiguration": configuration(extensionsEnabled="false")}}
    health = arc_health_of(body)
    assert health.status is HealthStatus.BLOCKED
    assert health.remedy == ("azcmagent config set extensions.enabled true",)
    # Without osType the fleet's own OS decides the handler and the command's form.
    del body["properties"]["osType"]
    assert arc_health_of(body, OsType.LINUX).remedy == (
        "sudo azcmagent config set extensions.enabled true",)
    assert arc_health_of(body).status is HealthStatus.READY  # no OS: nothing to judge
