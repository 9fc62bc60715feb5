"""The fleetrun app: opens a fleet, and runs what is composed on it (issue 6 in progress)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.terminal_theme import TerminalTheme
from textual import events, work
from textual.app import App, ComposeResult
from textual.command import Provider
from textual.widgets import Footer, Header, LoadingIndicator

from core import config
from core.backends.base import HostKeyCheckingBackend
from core.errors import FleetrunError
from core.fanout import FanoutOptions
from core.fleet import DEFAULT_FLEET, Fleet, FleetOptions, open_fleet
from core.fleet.spec_text import join_fleet_specs
from core.health_cache import HealthCache
from core.journal_store import Journal
from core.model import Command, Machine
from core.runner import RunSession
from core.validate import Problem, ValidationError
from tui import idle_collector, keymap, themes
from tui.colon_commands import Action, ColonCommands
from tui.library_store import SavedCommands
from tui.palette import BuiltinCommandsProvider, SavedCommandsProvider
from tui.run_request import RunRequest
from tui.screens.command_line import CommandLine
from tui.screens.compose import ComposeScreen
from tui.screens.fleet import FleetScreen
from tui.screens.groups import GroupsScreen
from tui.screens.history import HistoryScreen
from tui.screens.key_sheet import KeySheet
from tui.screens.run import RunScreen
from tui.widgets.compose.confirm_run import field_label
from tui.widgets.dialogs.confirm import Confirm

log = logging.getLogger(__name__)

SANDBOX_HINT = ("the built-in sandbox: an emulated Azure fleet (add [azure] to config.toml "
                "or pass --fleet for a real one)")


def _problem_lines(problems: Sequence[Problem]) -> str:
    """The gate's findings, one line each (messages never hold secrets: core/validate.py)."""
    return "\n".join(f"{field_label(p.field)}: {'error' if p.is_error else 'warning'}: "
                     f"{p.message}" for p in problems)


def _machine_line(assignments: Sequence[tuple[Machine, Command]], shown: int = 5) -> str:
    names = [m.name or m.id for m, _ in assignments]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{len(names)} machine(s): {', '.join(names[:shown])}{more}"


class FleetrunApp(App[None]):
    """The TUI.

    Args:
        fleet_specs: ``--fleet`` values; the sandbox when empty.
        options: Fleet-wide choices (host-key acceptance).
    """

    TITLE = "fleetrun"
    BINDINGS = keymap.APP
    # Saved commands beside Textual's system commands (theme, keys, quit...).
    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = (
        App.COMMANDS | {SavedCommandsProvider, BuiltinCommandsProvider})
    _last_ansi_theme: tuple[tuple[str, TerminalTheme, TerminalTheme], TerminalTheme] | None = None
    """The palette :attr:`ansi_theme` last gave, and for which theme and bases."""

    def __init__(self, fleet_specs: Sequence[str] = (), options: FleetOptions | None = None
                 ) -> None:
        # no-color.org: an empty NO_COLOR asks for nothing, but Textual would go monochrome.
        empty_no_color = os.environ.get("NO_COLOR") == ""
        if empty_no_color:
            del os.environ["NO_COLOR"]
        try:
            super().__init__()
        finally:
            if empty_no_color:
                os.environ["NO_COLOR"] = ""
        self._palettes = themes.AnsiPalettes()
        self.fleet_specs = list(fleet_specs) or [DEFAULT_FLEET]
        self.options = options or FleetOptions()
        self.fleet: Fleet | None = None
        self.user_keymap: dict[str, str] = {}
        """The ``[keymap]`` overrides of config.toml, as applied (binding id → keys)."""
        self.saved_commands = SavedCommands(self.notify)
        """The saved-command library (palette, ``:run``, the composer's ctrl+s)."""
        self.last_session: RunSession | None = None
        """The run started last in this session (``:rerun failed`` off the run screen)."""
        self._idle_collector = idle_collector.IdleCollector()

    def compose(self) -> ComposeResult:
        yield Header()
        yield LoadingIndicator()
        yield Footer()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._idle_collector.key_pressed()
        await super().on_event(event)

    def collect_garbage_between_keys(self) -> None:
        """Take Python's full collections over: run them when no key is coming
        (:mod:`tui.idle_collector`)."""
        self._idle_collector.start()
        self.set_interval(idle_collector.CHECK_SECONDS, self._idle_collector.tick)

    def on_mount(self) -> None:
        self.collect_garbage_between_keys()
        try:
            user_keymap = keymap.load_keymap(config.config_dir() / "config.toml")
        except keymap.KeymapError as exc:
            self.notify(str(exc), severity="error", timeout=10)
        else:
            self.user_keymap = user_keymap.overrides
            for problem in user_keymap.problems:
                self.notify(problem, title="Keymap", severity="error", timeout=10)
        self.set_keymap(self.user_keymap)
        for theme_problem in themes.set_up(self, config.config_dir()):
            self.notify(str(theme_problem), title="Theme", severity="error", timeout=10)
        # Textual made its ANSI filter before this app's palette existed, and remakes it only
        # when the theme changes: with the default theme kept, states would keep its colours.
        self._refresh_truecolor_filter(self.ansi_theme)
        self.saved_commands.reload()  # a bad file is reported now, once
        self.sub_title = "opening " + ", ".join(self.fleet_specs)
        self._open()

    @property
    def ansi_theme(self) -> TerminalTheme:
        """Textual's ANSI palette, with the colours states are drawn in from the theme."""
        palettes = getattr(self, "_palettes", None)  # asked for while App.__init__ runs
        if palettes is None:
            return super().ansi_theme
        # Asked for at every line drawn: looking the theme up costs more than the line.
        key = (self.theme, self.ansi_theme_dark, self.ansi_theme_light)
        last = self._last_ansi_theme
        if last is not None and last[0] == key:
            return last[1]
        palette: TerminalTheme = palettes.get(self.current_theme, super().ansi_theme)
        self._last_ansi_theme = (key, palette)
        return palette

    @work(exclusive=True, group="fleet")
    async def _open(self) -> None:
        try:
            self.fleet = await open_fleet(self.fleet_specs, self.options)
        except FleetrunError as exc:
            self._stop_loading()
            self.sub_title = "no fleet"
            self.notify(str(exc), title="Cannot open the fleet", severity="error", timeout=30)
            return
        except Exception as exc:  # a bug, not the user's doing: a line here, the rest logged
            log.exception("opening the fleet %s failed", ", ".join(self.fleet_specs))
            self._stop_loading()
            self.sub_title = "no fleet"
            first_line = next(iter(str(exc).splitlines()), "")
            self.notify(f"{type(exc).__name__}: {first_line} (details in {config.log_path()})",
                        title="Cannot open the fleet", severity="error", timeout=30)
            return
        name = ", ".join(self.fleet_specs)
        if self.fleet_specs == [DEFAULT_FLEET]:
            name = SANDBOX_HINT
        # The first (today the only: SSH's) whose refused host keys the user reviews.
        host_keys = next((b for b in self.fleet.backends
                          if isinstance(b, HostKeyCheckingBackend)), None)
        self._stop_loading()
        await self.push_screen(FleetScreen(self.fleet.machines, self.fleet.backends,
                                           name, host_keys=host_keys,
                                           health_cache=HealthCache(config.health_cache_path())))

    def _stop_loading(self) -> None:
        # Its animation repaints this screen 16 times a second even when covered, and
        # Textual then repaints the whole screen above it (the fleet screen) as often.
        for indicator in self.screen_stack[0].query(LoadingIndicator):
            indicator.remove()

    def on_fleet_screen_run_requested(self, message: FleetScreen.RunRequested) -> None:
        # The composer showed the warnings on its confirmation already.
        self.start_run(message.request.assignments, message.request.options,
                       warnings_shown=True)

    def on_run_screen_rerun_requested(self, message: RunScreen.RerunRequested) -> None:
        self.start_run(message.assignments, FanoutOptions(),
                       parent_run_id=message.parent_run_id)

    def on_groups_screen_rerun_requested(self, message: GroupsScreen.RerunRequested) -> None:
        self.start_run(message.assignments, FanoutOptions(), parent_run_id=message.parent_run_id,
                       source_group=message.source_group)

    def on_groups_screen_compose_requested(self, message: GroupsScreen.ComposeRequested
                                           ) -> None:
        # The fleet's own machines (their health now), where the fleet still has them.
        current = {m.id: m for m in self.fleet.machines} if self.fleet is not None else {}
        machines = [current.get(m.id, m) for m in message.machines]

        def composed(request: RunRequest | None) -> None:
            if request is not None:
                self.start_run(request.assignments, request.options, warnings_shown=True,
                               parent_run_id=message.parent_run_id,
                               source_group=message.source_group)

        self.push_screen(ComposeScreen(machines), composed)

    def start_run(
        self,
        assignments: Sequence[tuple[Machine, Command]],
        options: FanoutOptions,
        *,
        parent_run_id: str = "",
        source_group: str = "",
        warnings_shown: bool = False,
    ) -> None:
        """Plan a run, record it in the journal, and show it on a run screen.

        Every run starts here (composer, ``R``, ``:rerun``, ``:run``): what the core's gate
        refuses is shown and nothing starts. ``warnings_shown`` says the user saw the
        gate's warnings already (the composer's confirmation lists them).
        """
        if self.fleet is None:
            return
        backends = self.fleet.backends
        try:
            session = RunSession.plan(
                list(assignments), backends.for_machine, fleet=join_fleet_specs(self.fleet_specs),
                parent_run_id=parent_run_id, source_group=source_group, options=options,
                journal=Journal(config.journal_path()),
            )
        except ValidationError as exc:
            errors = [p for p in exc.problems if p.is_error]
            noun = "problem" if len(errors) == 1 else "problems"
            self.notify(f"{_machine_line(assignments)}\n{_problem_lines(exc.problems)}",
                        title=f"Run not started: {len(errors)} {noun}", severity="error",
                        timeout=30, markup=False)
            return
        if parent_run_id:
            # Said only now: a rerun the gate refuses must not first announce itself.
            verb = "Running the new command on" if warnings_shown else "Rerunning"
            origin = f", {source_group}" if source_group else ""
            self.notify(f"{verb} {len(assignments)} machine(s) of run {parent_run_id}{origin}…",
                        markup=False)
        if session.warnings and not warnings_shown:
            self.notify(_problem_lines(session.warnings), title="Run started with warnings",
                        severity="warning", timeout=15, markup=False)
        self.last_session = session
        self.push_screen(RunScreen(session, ", ".join(self.fleet_specs)))

    async def action_quit(self) -> None:
        """Quit; while a run is going, only once the user says its machines may be canceled."""
        running = [w for w in self.workers
                   if w.name.startswith("run:") and not w.is_finished]
        if not running:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()  # the run's worker is cancelled: its machines are stopped

        self.push_screen(Confirm(f"{len(running)} run(s) still going: quit and cancel "
                                 "their machines?", yes="Quit"), answered)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "command_line":  # the text fields of other screens take ':' as typed
            return isinstance(self.screen, FleetScreen | RunScreen | HistoryScreen)
        return True

    def action_command_line(self) -> None:
        """Open the ``:`` command line (:run, :target, :rerun failed, :history, :theme)."""
        self.push_screen(CommandLine(ColonCommands(self, self.screen)), self._command_chosen)

    async def _command_chosen(self, action: Action | None) -> None:
        if action is not None:
            await action()

    def action_help(self) -> None:
        """Open the key sheet (every key, the current screen's first), or close it."""
        if isinstance(self.screen, KeySheet):
            self.screen.dismiss()
        else:
            self.push_screen(KeySheet(self.user_keymap, self.screen))

    async def on_unmount(self) -> None:
        self._idle_collector.stop()
        if self.fleet is not None:
            await self.fleet.aclose()
