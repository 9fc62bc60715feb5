"""Which Azure Run Command API the composer's run asks for (ctrl+t cycles auto → managed →
action), said above the footer unless it is auto, with what the choice means."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from core.model import RunApi

API_NOTES = {
    RunApi.AUTO: "managed, falling back per VM to the action API where managed is refused",
    RunApi.MANAGED: "managed run commands only",
    RunApi.ACTION: "the action API: no exit code, the last 4 KB of output, one run at a "
    "time per VM; Arc machines are skipped",
}


def next_api(api: RunApi) -> RunApi:
    order = list(RunApi)
    return order[(order.index(api) + 1) % len(order)]


class ApiLine(Static):
    """The chosen API and its note; hidden while it is auto (class ``-chosen``)."""

    DEFAULT_CSS = """
    ApiLine { height: auto; padding: 0 1; display: none; }
    ApiLine.-chosen { display: block; }
    """

    def __init__(self) -> None:
        super().__init__(id="api")

    def show(self, api: RunApi) -> str:
        """Show ``api``; returns its note."""
        self.set_class(api is not RunApi.AUTO, "-chosen")
        note = API_NOTES[api]
        self.update(Text.assemble(("Azure API ", "dim"), (api.value, "bold"), f": {note}"))
        return note
