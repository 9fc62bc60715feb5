"""The key sheet (``?``): every key of the app, grouped by where it acts, as the user has them.

The groups and their bindings are read from :mod:`tui.keymap` when the sheet opens, so a
binding added there is listed without touching this module. Keys are shown after the
user's ``[keymap]`` overrides, next to the binding id that remaps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

from tui import keymap
from tui.widgets.vim_table import VimTable

HINT = 'Remap a key by its id in [keymap] of config.toml, e.g. "fleet.mark" = "m"'


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One binding as the sheet lists it.

    Attributes:
        binding_id: What ``[keymap]`` names it by.
        keys: The keys that trigger it now (the user's override, else the default).
        default_keys: The keys it is declared with.
        description: Its short name (the footer's).
        tooltip: What it does, when that needs more than the name.
    """

    binding_id: str
    keys: tuple[str, ...]
    default_keys: tuple[str, ...]
    description: str
    tooltip: str

    @property
    def overridden(self) -> bool:
        return self.keys != self.default_keys


@dataclass(frozen=True, slots=True)
class KeyContext:
    """A group of bindings (``FLEET``, ``RUN``…) and where it acts.

    Attributes:
        name: The group's name in :mod:`tui.keymap`.
        rows: Its bindings.
        current: The screen the sheet was opened from uses it.
        everywhere: The app itself has it: it acts on every screen.
    """

    name: str
    rows: tuple[KeyRow, ...]
    current: bool = False
    everywhere: bool = False

    @property
    def title(self) -> str:
        where = " (this screen)" if self.current else " (everywhere)" if self.everywhere else ""
        return self.name.replace("_", " ").capitalize() + where


def _split(keys: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in keys.split(",") if k.strip())


def key_contexts(user_keymap: Mapping[str, str], current: Iterable[object] = (),
                 everywhere: Iterable[object] = ()) -> list[KeyContext]:
    """Every group of bindings: the current screen's first, then the app's, then the rest.

    Args:
        user_keymap: The ``[keymap]`` overrides (binding id → keys) the app applies.
        current: The bindings of the screen the sheet was opened from.
        everywhere: The app's own bindings.
    """
    on_screen, on_app = _binding_ids(current), _binding_ids(everywhere)
    contexts = []
    for name, bindings in keymap.contexts():
        rows = tuple(
            KeyRow(b.id, _split(user_keymap.get(b.id) or b.key), _split(b.key),
                   b.description, b.tooltip)
            for b in bindings if b.id
        )
        ids = {r.binding_id for r in rows}
        contexts.append(KeyContext(name, rows, current=bool(on_screen & ids),
                                   everywhere=bool(on_app & ids)))
    # sorted() is stable: declaration order within each rank.
    return sorted(contexts, key=lambda c: 0 if c.current else 1 if c.everywhere else 2)


def _binding_ids(bindings: Iterable[object]) -> set[str]:
    return {b.id for b in bindings if isinstance(b, Binding) and b.id}


class KeySheet(ModalScreen[None]):
    """Every binding, grouped by context, the current screen's first; scrolls; esc closes.

    Args:
        user_keymap: The ``[keymap]`` overrides the app applies (binding id → keys).
        current: The screen it was opened from: its context is listed first.
    """

    BINDINGS = keymap.KEY_SHEET
    DEFAULT_CSS = """
    KeySheet { align: center middle; }
    KeySheet > Vertical {
        width: 90%; max-width: 140; height: 90%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    KeySheet DataTable { height: 1fr; }
    KeySheet #key-hint { height: auto; color: $text-muted; padding: 1 0 0 0; }
    """

    def __init__(self, user_keymap: Mapping[str, str], current: Screen[object] | None = None
                 ) -> None:
        super().__init__()
        self._user_keymap = user_keymap
        self._current = current
        self.contexts: list[KeyContext] = []
        """What the sheet lists, in its order (filled when it opens)."""

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Keys"
            yield VimTable[Text | str](cursor_type="row", zebra_stripes=True, id="keys")
            yield Static(HINT, id="key-hint", markup=False)

    def on_mount(self) -> None:
        self.contexts = key_contexts(self._user_keymap,
                                     getattr(self._current, "BINDINGS", ()),
                                     self.app.BINDINGS)
        table = self.query_one("#keys", DataTable)
        table.add_column("key", key="key")
        table.add_column("does", key="does")
        table.add_column(Text("id (for [keymap])"), key="id")
        for context in self.contexts:
            table.add_row(Text(context.title, style="bold reverse"), "", "",
                          key=f"context:{context.name}")
            for row in context.rows:
                table.add_row(*self._cells(row), key=row.binding_id)
        table.move_cursor(row=1)  # the first key, not its group's heading
        table.focus()
        close = self.row("keys.close")
        if close is not None:
            self.query_one(Vertical).border_subtitle = f"{self._keys_text(close.keys)} closes"

    def row(self, binding_id: str) -> KeyRow | None:
        """The sheet's row for ``binding_id``, if it lists one."""
        return next((r for c in self.contexts for r in c.rows if r.binding_id == binding_id),
                    None)

    def on_key(self, event: events.Key) -> None:
        # The help key opens the sheet and closes it too, whatever the user made it; the
        # app's own bindings do not reach a modal screen.
        help_row = self.row("app.help")
        if help_row is not None and ({event.key, event.character} & set(help_row.keys)):
            event.stop()
            self.dismiss()

    def _keys_text(self, keys: Iterable[str]) -> str:
        return "  ".join(self.app.get_key_display(Binding(k, "")) for k in keys)

    def _cells(self, row: KeyRow) -> tuple[Text, Text, Text]:
        keys = Text(self._keys_text(row.keys),
                    style="bold underline" if row.overridden else "bold")
        if row.overridden:
            keys.append(f" (default {self._keys_text(row.default_keys)})", style="dim")
        does = Text(row.description)
        if row.tooltip:
            does.append(f" · {row.tooltip}", style="dim")
        return keys, does, Text(row.binding_id, style="italic")
