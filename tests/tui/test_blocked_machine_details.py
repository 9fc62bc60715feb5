"""A machine whose own Arc agent blocks Run Command: Blocked on the fleet screen, and its
details show the azcmagent command that lifts it; an agent too old for run commands shows
the documented upgrade the same way."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from textual.visual import RichVisual
from textual.widgets import Static

from core.fleet import FleetOptions
from core.model import HealthStatus
from tests.tui.test_fleet_screen import fleet_screen
from tui.app import FleetrunApp
from tui.screens.fleet import FleetScreen
from tui.widgets.fleet.machine_details import MachineDetails


def shown_text(widget: Static) -> str:
    """What the widget shows, as plain text (its content is a Rich table)."""
    console = Console(width=120, record=True, file=io.StringIO())
    visual = widget.render()
    assert isinstance(visual, RichVisual)
    console.print(visual._renderable)
    return console.export_text()


FLEET = """
[defaults]
subscription = "55555555-5555-4555-8555-555555555555"
resource_group = "rg-tui"
location = "westeurope"

[[machines]]
name = "arc-ok"
kind = "arc"
os = "linux"
agent_version = "1.45.02800.0"

[[machines]]
name = "arc-locked"
kind = "arc"
os = "linux"
agent_version = "1.45.02800.0"
extensions_blocklist = ["microsoft.cplat.core/runcommandhandlerlinux"]

[[machines]]
name = "arc-monitor"
kind = "arc"
os = "windows"
agent_version = "1.45.02800.0"
config_mode = "monitor"

[[machines]]
name = "arc-old"
kind = "arc"
os = "windows"
agent_version = "1.29.02286.0"
"""


async def test_blocked_machines_show_the_command_that_lifts_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    app = FleetrunApp([f"sandbox:{path}"], FleetOptions())
    async with app.run_test(size=(140, 30)) as pilot:
        screen = await fleet_screen(pilot, app)
        health = {m.name: m.health.status for m in screen.machines}
        assert health == {"arc-ok": HealthStatus.READY, "arc-locked": HealthStatus.BLOCKED,
                          "arc-monitor": HealthStatus.BLOCKED,
                          "arc-old": HealthStatus.AGENT_TOO_OLD}
        expected = {
            "arc-locked": ("blocked on the machine",
                           'sudo azcmagent config set extensions.blocklist ""'),
            "arc-monitor": ("blocked on the machine", "azcmagent config set config.mode full"),
            "arc-old": ("older than 1.33",
                        "msiexec.exe /i AzureConnectedMachineAgent.msi /qn /l*v "
                        "azcmagentupgradesetup.log"),
        }
        for name, (detail, command) in expected.items():
            await pilot.press("slash", *f"name:{name}", "enter", "enter")
            assert isinstance(app.screen, MachineDetails)
            shown = shown_text(app.screen.query_one("#details", Static))
            assert health[name].value in shown and detail in shown, shown
            assert "to lift it" in shown and command in shown, shown
            await pilot.press("escape")
            assert isinstance(app.screen, FleetScreen)
