"""Export a run (``e``): pick JSON, CSV or a Markdown incident report and a path, write it.

The writing is :mod:`core.run_export`'s; here it runs in a thread (a run from history reads
its output files to group them) and the path written is notified.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioSet, Static

from core.run_export import FORMATS, ExportError, ExportFormat, default_path, write
from core.runner import RunSession
from tui import keymap
from tui.widgets.toggles import StateRadioButton

DEFAULT_FORMAT: ExportFormat = "md"


class ExportDialog(ModalScreen[Path | None]):
    """Dismissed with the path written, or None when canceled.

    Args:
        session: The run to export (live: what is known so far).
        directory: Where the default file name points (the current directory by default).
    """

    BINDINGS = keymap.EXPORT
    DEFAULT_CSS = """
    ExportDialog { align: center middle; }
    ExportDialog > Vertical {
        width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2;
    }
    ExportDialog RadioSet { width: 100%; margin-bottom: 1; }
    ExportDialog #export-message { height: auto; margin-top: 1; }
    ExportDialog #export-message.error { color: $error; }
    ExportDialog #export-buttons { height: auto; margin-top: 1; }
    ExportDialog Button { margin-right: 2; }
    """

    def __init__(self, session: RunSession, directory: Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.directory = directory
        self.format: ExportFormat = DEFAULT_FORMAT
        self._replace_confirmed: Path | None = None

    def compose(self) -> ComposeResult:
        run_id = self.session.run.run_id
        with Vertical():
            yield Static(f"[b]Export run {run_id}[/b]"
                         + ("" if self.session.run.finished else " (still running: what is "
                            "known so far)"))
            yield Label("Format")
            with RadioSet(id="export-format"):
                # The chosen format first: the set highlights its first button on opening.
                for fmt in sorted(FORMATS, key=lambda f: f != self.format):
                    yield StateRadioButton(FORMATS[fmt], value=fmt == self.format,
                                      id=f"format-{fmt}")
            yield Label("File")
            yield Input(str(self._default(self.format)), id="export-path")
            yield Static("Protected parameter values are written as ***.", id="export-message")
            with Horizontal(id="export-buttons"):
                yield Button("Write (ctrl+s)", variant="primary", id="write")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(RadioSet).focus()

    def _default(self, fmt: ExportFormat) -> Path:
        # Relative to where fleetrun was started, as a shell user would write it.
        directory = self.directory if self.directory is not None else Path()
        return default_path(self.session.run.run_id, fmt, directory)

    @on(RadioSet.Changed, "#export-format")
    def _format_chosen(self, event: RadioSet.Changed) -> None:
        chosen = next(fmt for fmt in FORMATS if event.pressed.id == f"format-{fmt}")
        path_input = self.query_one("#export-path", Input)
        # A path still at the default follows the format; one the user typed is theirs.
        if path_input.value == str(self._default(self.format)):
            path_input.value = str(self._default(chosen))
        self.format = chosen

    @on(Input.Submitted, "#export-path")
    def _path_submitted(self) -> None:
        self.action_write()

    @on(Button.Pressed, "#write")
    def _write_pressed(self) -> None:
        self.action_write()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_write(self) -> None:
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            self._say("Give a file to write", error=True)
            return
        path = Path(text).expanduser()
        if path.is_dir():
            path = path / self._default(self.format).name
        if path.exists() and self._replace_confirmed != path:
            self._replace_confirmed = path
            self._say(f"{path} exists: write again (enter or ctrl+s) to replace it", error=True)
            return
        self._write(path)

    @work(exclusive=True, group="export")
    async def _write(self, path: Path) -> None:
        self._say(f"Writing {path}…")
        run, output = self.session.run, self.session.output
        try:
            written = await asyncio.to_thread(write, run, output, self.format, path)
        except ExportError as exc:
            self._say(str(exc), error=True)
            return
        self.app.notify(f"Wrote {written}", title=f"Run {run.run_id} exported")
        self.dismiss(written)

    def _say(self, message: str, *, error: bool = False) -> None:
        shown = self.query_one("#export-message", Static)
        shown.update(Text(message))
        shown.set_class(error, "error")

    def action_cancel(self) -> None:
        self.dismiss(None)
