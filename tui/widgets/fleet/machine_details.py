"""One machine in full: identity, where it is, its agent's health, its tags."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from core.model import Machine
from tui import keymap
from tui.widgets.fleet.machine_table import health_text, tags_text


def details_table(machine: Machine) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    health = machine.health
    rows: list[tuple[str, object]] = [
        ("name", machine.name),
        ("id", machine.id),
        ("kind", machine.kind.value),
        ("os", machine.os.value),
        ("health", health_text(health.status)),
        ("detail", health.detail),
        # The exact commands, one a line, to copy into a shell on the machine.
        ("to lift it", Text("\n".join(health.remedy))),
        ("agent", health.agent_version or ""),
        ("checked", health.checked_at.isoformat(timespec="seconds") if health.checked_at
         else "not yet"),
        ("location", machine.location),
        ("subscription", machine.subscription),
        ("address", machine.address),
        ("tags", tags_text(dict(machine.tags))),
    ]
    for label, value in rows:
        if value:
            table.add_row(label, value)  # type: ignore[arg-type]
    return table


class MachineDetails(ModalScreen[None]):
    """A machine's details over the fleet screen; esc closes it."""

    BINDINGS = keymap.DETAILS
    DEFAULT_CSS = """
    MachineDetails { align: center middle; }
    MachineDetails > Vertical {
        width: 90; max-width: 100%; height: auto; max-height: 90%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    """

    def __init__(self, machine: Machine) -> None:
        super().__init__()
        self.machine = machine

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(details_table(self.machine), id="details")

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(result)
