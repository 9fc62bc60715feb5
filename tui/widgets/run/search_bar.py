"""The one-line search box of the full-output pane (``/``): plain text, or a regex."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import var
from textual.widgets import Input, Label

from tui import keymap

HINT = "enter search · ctrl+r {other} · esc close"


class SearchBar(Horizontal):
    """Asks for what to find; hidden until :meth:`open`, hidden again by :meth:`close`.

    Enter posts the input's ``Input.Submitted``; the pane that holds the bar searches.
    """

    BINDINGS = keymap.OUTPUT_SEARCH
    DEFAULT_CSS = """
    SearchBar {
        dock: bottom;
        height: 1;
        display: none;
        background: $panel;
        &.-open { display: block; }
        & > Label { width: auto; padding: 0 1; color: $accent; text-style: bold; }
        & > Input { width: 1fr; }
    }
    """

    regex: var[bool] = var(False)
    """The text is a regular expression, not plain text."""

    class Closed(Message):
        """The bar was closed without searching."""

    def compose(self) -> ComposeResult:
        yield Label("/", id="search-mode")
        yield Input(placeholder=HINT.format(other="regex"), id="search-text", compact=True)

    @property
    def text(self) -> str:
        return self.query_one(Input).value

    def open(self) -> None:
        """Show the bar and take the keyboard, with the last search selected."""
        self.add_class("-open")
        field = self.query_one(Input)
        self.screen.set_focus(field)  # now: focus() would wait behind keys already queued
        field.select_all()

    def close(self) -> None:
        self.remove_class("-open")

    def action_close(self) -> None:
        self.close()
        self.post_message(self.Closed())

    def action_toggle_regex(self) -> None:
        self.regex = not self.regex

    def watch_regex(self, regex: bool) -> None:
        if not self.is_mounted:
            return
        self.query_one(Label).update("regex /" if regex else "/")
        self.query_one(Input).placeholder = HINT.format(other="plain text" if regex
                                                        else "regex")
