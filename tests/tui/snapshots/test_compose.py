"""Snapshots of composing a run: the scripts, parameters and options, then the confirmation."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import Input, TabbedContent

from core.model import OsType, Parameter
from tests.tui.snapshots.harness import (
    DB1,
    WEB1,
    WEB2,
    WIN1,
    SnapCompare,
    compose_app,
    steady_cursors,
    until,
)
from tui.screens.compose import ComposeScreen
from tui.widgets.compose.confirm_run import ConfirmRun
from tui.widgets.compose.parameter_table import ParameterTable

SIZE = (130, 40)
SECRET = "Canary-snapshot-s3cret"

BASH = """\
#!/bin/bash
# Restart the service when its health endpoint stops answering.
set -euo pipefail
if ! curl -fsS -H "Authorization: Bearer $TOKEN" "http://localhost/health"; then
    systemctl restart "$SERVICE" && echo "restarted $SERVICE on $(hostname)"
fi
"""

POWERSHELL = """\
# Restart the service when it is not running.
$service = Get-Service -Name $env:SERVICE
if ($service.Status -ne 'Running') {
    Restart-Service -Name $service.Name -Force
    Write-Output "restarted $($service.Name) on $env:COMPUTERNAME"
}
"""


async def composed(pilot: Pilot[None]) -> ComposeScreen:
    """Both scripts written, a plain and a protected parameter, concurrency 50%."""
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ComposeScreen), "the compose screen")
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    screen.editor(OsType.LINUX).text = BASH
    screen.editor(OsType.WINDOWS).text = POWERSHELL
    screen.query_one("#concurrency", Input).value = "50%"
    parameters = screen.query_one(ParameterTable)
    await parameters.add_row(Parameter("SERVICE", "nginx"))
    await pilot.press("ctrl+n", *"TOKEN", "tab", "space", "tab")  # protected, as a user does
    screen.query_one(ParameterTable).query(".value").last(Input).value = SECRET
    # The edits' Changed messages handled first (they start the check's timer), so the wait
    # below cannot pass before the check is even due.
    await pilot.pause()
    await until(pilot, lambda: not screen.checking, "the problem list to follow the typing")
    await steady_cursors(pilot)
    assert SECRET not in app.export_screenshot()
    return screen


class TestCompose:
    def test_compose_masks_the_protected_parameter(self, snap_compare: SnapCompare) -> None:
        """The bash script highlighted; TOKEN's value shows as dots, never as typed."""
        assert snap_compare(compose_app([WEB1, WEB2, DB1, WIN1]), terminal_size=SIZE,
                            run_before=composed)

    def test_compose_powershell_tab(self, snap_compare: SnapCompare) -> None:
        """The Windows machine's script, highlighted as PowerShell."""

        async def run_before(pilot: Pilot[None]) -> None:
            screen = await composed(pilot)
            screen.query_one(TabbedContent).active = "tab-windows"
            screen.editor(OsType.WINDOWS).focus()
            await steady_cursors(pilot)

        assert snap_compare(compose_app([WEB1, WEB2, DB1, WIN1]), terminal_size=SIZE,
                            run_before=run_before)

    def test_run_confirmation(self, snap_compare: SnapCompare) -> None:
        """ctrl+r: per-OS counts, the unhealthy machine skipped, the secret as ***."""

        async def run_before(pilot: Pilot[None]) -> None:
            await composed(pilot)
            await pilot.press("ctrl+r")
            await until(pilot, lambda: isinstance(pilot.app.screen, ConfirmRun),
                        "the confirmation")

        assert snap_compare(compose_app([WEB1, WEB2, DB1, WIN1]), terminal_size=SIZE,
                            run_before=run_before)
