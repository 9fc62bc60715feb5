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

from core.azure.action_commands import BuiltinCommand, InvalidActionResult
from core.azure.arm import ArmError
from core.backends.compute import ComputeBackend
from core.library import SavedCommand
from core.model import MachineKind
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


def describe_builtin(builtin: BuiltinCommand) -> str:
    """Its palette line: OS, label, parameters, and that it runs through the action API."""
    parameters = ", ".join(p.name for p in builtin.parameters) or "no parameters"
    return f"{builtin.os.value} · {builtin.label} · {parameters} · built-in (action API)"


class BuiltinCommandsProvider(Provider):
    """Azure's built-in run commands of the fleet's VM regions (``ifconfig``, ``IPConfig``,
    ...), listed per OS beside the saved commands; choosing one opens the composer for the
    marked VMs of its OS with it loaded."""

    _builtins: list[BuiltinCommand] = []

    async def startup(self) -> None:
        self._builtins = []
        fleet = fleet_screen(self.app)
        if fleet is None or self.screen.is_modal or isinstance(self.screen, ComposeScreen):
            return
        backend = fleet.backends.get(MachineKind.VM)
        vms = [m for m in fleet.machines if m.kind is MachineKind.VM]
        if not vms or not isinstance(backend, ComputeBackend):
            return
        try:
            # Cached by the backend: ARM is asked once per region and session.
            self._builtins = await backend.builtins.for_machines(vms)
        except (ArmError, InvalidActionResult) as exc:
            self.app.notify(f"Built-in run commands could not be listed: {exc}",
                            severity="warning", markup=False)

    def _choose(self, builtin: BuiltinCommand) -> None:
        fleet = fleet_screen(self.app)
        why = "The fleet is not open yet" if fleet is None else fleet.compose_builtin(builtin)
        if why is not None:
            self.app.notify(why, severity="warning", markup=False)

    def _prompt(self, builtin: BuiltinCommand, matcher: Matcher | None) -> Content:
        name = matcher.highlight(builtin.id) if matcher else Content(builtin.id)
        return name + Content.from_markup(f"  [dim]built-in · {builtin.os.value}[/]")

    async def discover(self) -> Hits:
        for builtin in self._builtins:
            yield DiscoveryHit(self._prompt(builtin, None), partial(self._choose, builtin),
                               text=builtin.id, help=escape(describe_builtin(builtin)))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for builtin in self._builtins:
            score = matcher.match(builtin.id)
            if score > 0:
                yield Hit(score, self._prompt(builtin, matcher), partial(self._choose, builtin),
                          text=builtin.id, help=escape(describe_builtin(builtin)))
