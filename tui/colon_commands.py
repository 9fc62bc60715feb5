"""The ``:`` commands: what each one means, checked before it runs, and their completions.

``:run NAME`` opens the composer with a saved command for the fleet screen's marked
machines; ``:target QUERY`` filters the fleet screen (empty: no filter); ``:rerun failed``
reruns the failed, timed-out and not-started machines of the run on screen (elsewhere: of
the last run started in this session, whose secrets are still in memory); ``:history``
lists past runs; ``:theme NAME`` switches the colour theme.

A command is parsed into an :data:`Action` while the command line is still open, so a
mistake (an unknown command, saved command or theme) is shown there, with what is allowed,
and can be fixed; the action runs once the line has closed.
"""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.screen import Screen

from core.fanout import rerun_assignments
from core.library import LibraryError
from core.query import QueryError, parse_query
from core.runner import RunSession
from tui import themes
from tui.library_store import saved_commands
from tui.palette import fleet_screen, open_saved
from tui.screens.history import HistoryScreen
from tui.screens.run import RunScreen

Action = Callable[[], Awaitable[None]]
"""What a checked command does, run after the command line closes."""


@dataclass(frozen=True, slots=True)
class Spec:
    """One ``:`` command: its argument, and what it does (for the usage line)."""

    argument: str
    summary: str


COMMANDS: dict[str, Spec] = {
    "run": Spec("NAME", "compose a saved command for the marked machines"),
    "target": Spec("QUERY", "filter the machines, e.g. name:web-* tag:env=prod os:linux "
                   "health:bad !kind:arc (empty: all)"),
    "rerun": Spec("failed", "rerun the failed, timed-out and not-started machines"),
    "history": Spec("", "past runs"),
    "theme": Spec("NAME", "switch the colour theme"),
}

USAGE = " · ".join(f":{name} {spec.argument}".rstrip() for name, spec in COMMANDS.items())


class CommandLineError(ValueError):
    """A command that cannot run; the message says what is allowed."""


def _closest(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.7)
    return f"; did you mean {', '.join(close)}?" if close else ""


class ColonCommands:
    """Parses and completes ``:`` commands for ``app`` (fleetrun's app).

    Args:
        app: The app the commands act on.
        origin: The screen the command line was opened on (``:rerun failed`` on a run
            screen reruns that run); the app's current screen when None.
    """

    def __init__(self, app: App[Any], origin: Screen[Any] | None = None) -> None:
        self.app = app
        self.origin = origin if origin is not None else app.screen

    # -- completion -----------------------------------------------------------------------

    def names(self, command: str) -> list[str]:
        """What may follow ``command`` (saved commands, themes, ...), sorted."""
        if command == "run":
            return [c.name for c in saved_commands(self.app).library.sorted()]
        if command == "theme":
            return themes.theme_names(self.app)
        if command == "rerun":
            return ["failed"]
        return []

    def complete(self, text: str) -> list[str]:
        """Whole lines that ``text`` may become, best first."""
        head, sep, rest = text.lstrip(": ").partition(" ")
        if not sep:
            return [name + (" " if COMMANDS[name].argument else "")
                    for name in COMMANDS if name.startswith(head.lower())]
        folded = rest.strip().casefold()
        return [f"{head} {name}" for name in self.names(head.lower())
                if name.casefold().startswith(folded)]

    # -- parsing --------------------------------------------------------------------------

    def parse(self, text: str) -> Action:
        """The action ``text`` asks for.

        Raises:
            CommandLineError: Not a command, or an argument it does not take (the message
                says which are allowed).
        """
        head, _, rest = text.strip().lstrip(":").strip().partition(" ")
        command, argument = head.lower(), rest.strip()
        if not command:
            raise CommandLineError(f"Type a command: {USAGE}")
        if command not in COMMANDS:
            raise CommandLineError(f"Unknown command :{head}{_closest(command, list(COMMANDS))}"
                                   f" The commands are: {USAGE}")
        parser: Callable[[str], Action] = getattr(self, f"_{command}")
        return parser(argument)

    def _run(self, name: str) -> Action:
        library = saved_commands(self.app).library
        if not name:
            raise CommandLineError("Give a saved command: :run NAME (tab completes; ctrl+p "
                                   "searches them)")
        try:
            saved = library.get(name)  # exactly, else ignoring case
        except LibraryError:
            raise CommandLineError(f"No saved command {name!r}"
                                   f"{_closest(name, list(library.commands))} "
                                   "(tab completes; ctrl+p searches them)") from None

        async def run() -> None:
            why = open_saved(self.app, saved)
            if why is not None:
                self.app.notify(why, severity="warning")

        return run

    def _target(self, query: str) -> Action:
        try:
            parse_query(query)
        except QueryError as exc:
            raise CommandLineError(f"{exc}") from None
        fleet = fleet_screen(self.app)
        if fleet is None:
            raise CommandLineError("The fleet is not open yet")

        async def target() -> None:
            while self.app.screen is not fleet and len(self.app.screen_stack) > 1:
                await self.app.pop_screen()
            why = fleet.set_filter(query)
            if why is not None:
                self.app.notify(why, severity="error", markup=False)

        return target

    def _rerun(self, argument: str) -> Action:
        if argument.lower() not in ("", "failed"):
            raise CommandLineError(f":rerun takes 'failed' (the failed, timed-out and "
                                   f"not-started machines), not {argument!r}")
        screen = self.origin
        if isinstance(screen, RunScreen):

            async def rerun_shown() -> None:
                screen.rerun_failed()  # typed in full: no dialog (R asks which states)

            return rerun_shown
        session = getattr(self.app, "last_session", None)
        if not isinstance(session, RunSession):
            raise CommandLineError("No run yet in this session to rerun (open a past run "
                                   "from :history and press R there)")
        run = session.run
        if not run.finished:
            raise CommandLineError(f"Run {run.run_id} is still going: rerun it once it ends")
        assignments = rerun_assignments(run)
        if not assignments:
            raise CommandLineError(f"Nothing to rerun in run {run.run_id}: no machine failed,"
                                   " timed out or was left unstarted")

        async def rerun_last() -> None:
            self.app.post_message(RunScreen.RerunRequested(assignments, run.run_id))

        return rerun_last

    def _history(self, argument: str) -> Action:
        if argument:
            raise CommandLineError(f":history takes nothing, not {argument!r}")

        async def history() -> None:
            if not isinstance(self.app.screen, HistoryScreen):
                await self.app.push_screen(HistoryScreen())

        return history

    def _theme(self, name: str) -> Action:
        names = themes.theme_names(self.app)
        if name not in names:
            said = f"No theme {name!r}{_closest(name, names)}" if name else "Give a theme"
            raise CommandLineError(f"{said}. The themes are: {', '.join(names)}")

        async def theme() -> None:
            themes.apply_theme(self.app, name)
            self.app.notify(f"Theme: {name}")

        return theme
