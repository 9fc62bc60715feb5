"""The run confirmation says why machines will be skipped: per health status, the machines
(folded to fit 80 columns), the reason they share and the command that lifts it."""

from __future__ import annotations

import io

from rich.console import Console
from textual.containers import VerticalScroll

from core.fanout import FanoutOptions
from core.model import Command, CommandId, Health, HealthStatus, Machine, MachineKind, OsType
from tests.tui.test_compose import ComposeApp, shown, type_in
from tui.run_request import RunRequest
from tui.widgets.compose.confirm_run import SUMMARY_WIDTH, ConfirmRun, summary

LOCKED = 'sudo azcmagent config set extensions.blocklist ""'
MONITOR = "azcmagent config set config.mode full"
NO_WRITE = ("needs Microsoft.HybridCompute/machines/runCommands/write (Azure Connected "
            "Machine Resource Administrator)")


def arc(name: str, status: HealthStatus, detail: str = "", *remedy: str) -> Machine:
    return Machine(f"arc/{name}", name, MachineKind.ARC, OsType.LINUX,
                   health=Health(status, detail, remedy=remedy))


FLEET = [
    arc("web-1", HealthStatus.READY),
    arc("locked-1", HealthStatus.BLOCKED, "blocked on the machine: the handler is on the "
        "agent's extensions blocklist", LOCKED),
    arc("monitor-1", HealthStatus.BLOCKED, "blocked on the machine: the agent is in monitor "
        "mode", MONITOR),
    arc("legacy-1", HealthStatus.AGENT_TOO_OLD, "agent 1.29 is older than 1.33",
        "sudo yum update azcmagent"),
    # Thirty machines sharing one reason (as machines missing one permission will): one
    # reason line, their names folded.
    *(arc(f"reader-only-{i:02}", HealthStatus.DISCONNECTED, NO_WRITE) for i in range(30)),
]


def summary_lines(machines: list[Machine]) -> list[str]:
    request = RunRequest(tuple((m, Command(CommandId.SHELL, "true")) for m in machines),
                         FanoutOptions())
    console = Console(width=SUMMARY_WIDTH, record=True, file=io.StringIO())
    console.print(summary(request, []))
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_skipped_machines_are_grouped_by_status_with_their_reason_and_remedy() -> None:
    lines = summary_lines(FLEET)
    start = lines.index("33 machine(s) will be skipped:")
    assert lines[start + 1].startswith("  30 disconnected: reader-only-00, reader-only-01, ")
    assert lines[start + 1].endswith("more")
    assert lines[start + 2].startswith("    needs Microsoft.HybridCompute/machines/")
    text = "\n".join(lines)
    # Two machines blocked for two reasons: each with its own command, none folded away.
    assert "  2 blocked\n" in text + "\n"
    assert "    locked-1: blocked on the machine" in text
    assert f"      to lift it: {LOCKED}" in text
    assert "    monitor-1: blocked on the machine" in text
    assert f"      to lift it: {MONITOR}" in text
    assert "  1 agent too old: legacy-1\n    agent 1.29 is older than 1.33\n" \
           "    to lift it: sudo yum update azcmagent" in text
    # Largest group first; every line fits the box of an 80-column terminal.
    assert text.index("30 disconnected") < text.index("2 blocked") < text.index("agent too old")
    assert all(len(line) <= SUMMARY_WIDTH for line in lines), lines


async def test_the_confirmation_fits_80_by_24_and_names_the_reasons() -> None:
    app = ComposeApp(FLEET)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_in(pilot, app, "#script-linux", "true")
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmRun)
        box = app.screen.query_one(VerticalScroll).region
        assert box.x >= 0 and box.right <= 80, box  # its border is on screen, not cut
        assert shown("33 machine(s) will be skipped:", app)
        assert shown("30 disconnected: reader-only-00, reader-only-01", app)
