"""Saved commands in the command palette (ctrl+p), beside Textual's system commands.

What choosing one does follows the screen the palette was opened on, as Posting's palette
does: in the composer it loads into that composer (asking before replacing edited text);
on the fleet, run and history screens it opens the composer for the fleet screen's marked
machines (or the machine under its cursor) with the command loaded. ``:run NAME`` does the
same through :func:`open_saved`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher
from textual.markup import escape

from core.library import SavedCommand
from tui.library_store import saved_commands
from tui.screens.compose import ComposeScreen
from tui.screens.fleet import FleetScreen

OTHER_FIELDS_SCORE = 0.3
"""A query whose every word is in the tags, OSes or description ranks below most name
matches (fuzzy matching there would find almost any query in a long description)."""

DESCRIPTION_CHARS = 100
"""The palette shows this much of a description (``fleetrun commands show`` has it all)."""


def fleet_screen(app: App[Any]) -> FleetScreen | None:
    """The open fleet's screen (the bottom of the stack once the fleet has loaded)."""
    return next((s for s in app.screen_stack if isinstance(s, FleetScreen)), None)


def open_saved(app: App[Any], saved: SavedCommand) -> str | None:
    """Load ``saved`` as the current screen wants it; why not, or None when done.

    In the composer: loaded into it. Elsewhere: a composer for the fleet screen's marked
    machines (or the one under its cursor), with it loaded.
    """
    screen = app.screen
    if isinstance(screen, ComposeScreen):
        screen.load_saved(saved)
        return None
    fleet = fleet_screen(app)
    if fleet is None:
        return "The fleet is not open yet"
    return fleet.compose_saved(saved)


def describe(saved: SavedCommand) -> str:
    """The palette's second line: description (cut short), OSes, tags (plain text)."""
    parts = []
    if saved.description:
        cut = saved.description[:DESCRIPTION_CHARS]
        parts.append(cut + ("…" if len(cut) < len(saved.description) else ""))
    parts.append(" + ".join(str(os) for os in saved.os_types()))
    if saved.tags:
        parts.append(" ".join(f"#{tag}" for tag in saved.tags))
    return " · ".join(parts)


def other_fields_score(saved: SavedCommand, query: str) -> float:
    """:data:`OTHER_FIELDS_SCORE` when every word of ``query`` is in its tags, OSes or
    description (as a part of a word: "cert" finds "certificate"), else 0."""
    words = query.casefold().split()
    text = " ".join([*saved.tags, *map(str, saved.os_types()), saved.description]).casefold()
    return OTHER_FIELDS_SCORE if words and all(w in text for w in words) else 0.0


class SavedCommandsProvider(Provider):
    """Fuzzy search over the saved commands (name first, then tags, OSes, description)."""

    _commands: list[SavedCommand] = []

    def _offered(self) -> bool:
        """Whether choosing a command can do something on the calling screen."""
        screen = self.screen
        if isinstance(screen, ComposeScreen):
            return True
        fleet = fleet_screen(self.app)
        return not screen.is_modal and fleet is not None and bool(fleet.targets())

    async def startup(self) -> None:
        # Read again at each opening: a file added or fixed by hand shows without a restart
        # (a handful of small files); a bad file is reported only once.
        self._commands = saved_commands(self.app).reload().sorted()

    def _prompt(self, saved: SavedCommand, matcher: Matcher | None) -> Content:
        name = matcher.highlight(saved.name) if matcher else Content(saved.name)
        if saved.dangerous:
            name = name + Content.from_markup("  [bold $text-error]⚠ dangerous[/]")
        return name

    def _choose(self, saved: SavedCommand) -> None:
        why = open_saved(self.app, saved)
        if why is not None:
            self.app.notify(why, severity="warning")

    async def discover(self) -> Hits:
        if not self._offered():
            return
        for saved in self._commands:
            yield DiscoveryHit(self._prompt(saved, None), partial(self._choose, saved),
                               text=saved.name, help=escape(describe(saved)))

    async def search(self, query: str) -> Hits:
        if not self._offered():
            return
        matcher = self.matcher(query)
        for saved in self._commands:
            score = max(matcher.match(saved.name), other_fields_score(saved, query))
            if score > 0:
                yield Hit(score, self._prompt(saved, matcher), partial(self._choose, saved),
                          text=saved.name, help=escape(describe(saved)))
