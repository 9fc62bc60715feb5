"""The compose screen: a script per OS, parameters and options for the marked machines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    Header,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from core.azure.action_commands import BuiltinCommand
from core.library import CommandParameter, SavedCommand
from core.model import Command, CommandId, Machine, MachineKind, OsType, Parameter, RunApi
from core.runner import uploads_for
from core.validate import Problem, validate_selection
from tui import keymap
from tui.library_store import saved_commands
from tui.run_request import RunRequest
from tui.screens.save_command import SaveCommandDialog, suggested_name
from tui.widgets.compose.api_line import ApiLine, next_api
from tui.widgets.compose.confirm_run import ConfirmRun, nothing_runs_line
from tui.widgets.compose.left_out import left_out_line, missing_notice, no_script_problem, tab_label
from tui.widgets.compose.loaded_command import LoadedCommand, builtin_script_note
from tui.widgets.compose.options_form import OptionsForm, OptionValues
from tui.widgets.compose.parameter_table import ParameterTable
from tui.widgets.compose.problem_list import Plan, ProblemList
from tui.widgets.compose.script_editor import script_editor
from tui.widgets.compose.typed_parameter import TypedParameterRow
from tui.widgets.dialogs.confirm import Confirm
from tui.widgets.fitting_footer import FittingFooter

State = tuple[tuple[str, ...], tuple[Parameter, ...]]
"""What loading a saved command would replace: the scripts and the parameters."""


class ComposeScreen(Screen[RunRequest | None]):
    """Compose a run for ``machines``; dismisses with a RunRequest, or None on esc.

    Linux machines get a RunShellScript, Windows ones a RunPowerShellScript: there is one
    editor per OS present in the selection. ctrl+enter (or ctrl+r) checks everything with
    the rules the CLI uses and asks for confirmation; errors block the run.

    A saved command (``saved``, or later from the palette) fills the editors, the
    parameter table (typed rows: checked as typed) and the timeout. An OS it has no script
    for says so on its tab, and its machines are left out of the run unless a script is
    written there. ctrl+s saves what the composer holds as a saved command.

    Args:
        machines: The marked machines, in the order they are shown.
        saved: A saved command to start with.
    """

    BINDINGS = keymap.COMPOSE
    DEFAULT_CSS = """
    ComposeScreen #scripts { height: 1fr; }
    ComposeScreen TabPane { padding: 0; }
    ComposeScreen TextArea { height: 1fr; }
    ComposeScreen .missing { height: auto; padding: 0 1; color: $text-warning;
                             display: none; }
    ComposeScreen .missing.-shown { display: block; }
    ComposeScreen .section { padding: 0 1; text-style: bold; }
    """

    def __init__(self, machines: Sequence[Machine], saved: SavedCommand | None = None, *,
                 builtin: BuiltinCommand | None = None) -> None:
        super().__init__()
        self.builtin = builtin
        """A built-in command id to run instead of a script (the action API, its OS only)."""
        self.machines = list(machines)
        self.oses = [os for os in OsType if any(m.os is os for m in self.machines)]
        self.loaded: SavedCommand | None = None
        """The saved command loaded last (or saved as), if any."""
        self._start_with = saved
        self._pristine: State = ((), ())
        self.api = RunApi.ACTION if builtin is not None else RunApi.AUTO
        """The Run Command API the Azure VMs get (ctrl+t: compose.api)."""

    def compose(self) -> ComposeResult:
        yield Header()
        yield LoadedCommand()
        with TabbedContent(id="scripts"):
            for os_type in self.oses:
                with TabPane(self._tab_label(os_type, mounted=False), id=f"tab-{os_type}"):
                    yield Static(id=f"missing-{os_type}", classes="missing")
                    yield script_editor(os_type)
        # Short enough for 80 columns; the OS button's label says the rest.
        yield Label("Parameters · ctrl+n adds · ctrl+o removes · no name: positional (Linux)",
                    classes="section")
        yield ParameterTable(id="parameters")
        yield OptionsForm(id="options")
        yield ApiLine()
        yield ProblemList(self._plan)
        yield FittingFooter()

    async def on_mount(self) -> None:
        by_os = ", ".join(f"{self._count(o)} {o}" for o in self.oses)
        count = len(self.machines)
        self.sub_title = (f"compose for {count} machine{'' if count == 1 else 's'} "
                          f"({by_os or 'none'})")
        self._pristine = self._state()
        for os_type in self.oses:
            self._show_missing(os_type)
        if self._start_with is not None:
            await self._load(self._start_with)
        if self.builtin is not None:
            await self._load_builtin(self.builtin)
        editors = self.query(TextArea)
        if editors:
            editors.first().focus()

    def editor(self, os_type: OsType) -> TextArea:
        return self.query_one(f"#script-{os_type}", TextArea)

    def _count(self, os_type: OsType) -> int:
        return sum(1 for m in self.machines if m.os is os_type)

    def _tab_label(self, os_type: OsType, *, mounted: bool = True) -> str:
        return tab_label(os_type, self._count(os_type), width=self.app.size.width,
                         left_out=mounted and self._says_missing(os_type))

    def on_resize(self) -> None:
        tabs = self.query(TabbedContent)
        for os_type in self.oses if tabs else ():
            tabs.first().get_tab(f"tab-{os_type}").label = self._tab_label(os_type)

    # -- saved commands and built-ins -----------------------------------------------------

    def _state(self) -> State:
        return (tuple(self.editor(os).text for os in self.oses),
                self.query_one(ParameterTable).parameters)

    @property
    def edited(self) -> bool:
        """Whether the scripts or parameters changed since the composer opened or loaded."""
        return self._state() != self._pristine

    def load_saved(self, saved: SavedCommand) -> None:
        """Load ``saved`` into this composer, asking first if that would lose edits."""
        if not self.edited:
            self._load_in_worker(saved)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._load_in_worker(saved)

        self.app.push_screen(Confirm(f"Replace the scripts and parameters in the composer "
                                     f"with the saved command {saved.name}? What you wrote "
                                     "here is lost.", yes="Replace"), answered)

    @work(exclusive=True, group="load-saved")
    async def _load_in_worker(self, saved: SavedCommand) -> None:
        await self._load(saved)

    async def _load(self, saved: SavedCommand) -> None:
        self.loaded = saved
        for os_type in self.oses:
            self.editor(os_type).text = saved.scripts.get(CommandId.for_os(os_type), "")
            self._show_missing(os_type)
        await self.query_one(ParameterTable).load(saved.parameters)
        self.query_one(OptionsForm).set_timeout(saved.timeout)
        self.query_one(ProblemList).show_none()
        self.query_one(LoadedCommand).show_saved(self.loaded)
        self._pristine = self._state()
        self.notify(f"Loaded {saved.name}", markup=False)

    def _missing(self, os_type: OsType) -> bool:
        """No script for ``os_type``: its machines are left out (when another OS has one)."""
        if self.builtin is not None:
            return False
        return not self.editor(os_type).text.strip()

    def _says_missing(self, os_type: OsType) -> bool:
        """Whether the tab says its machines are left out: only where that is news (a
        saved command without that OS's script, or a mixed selection), not on the one
        empty editor of a fresh single-OS composer."""
        return self._missing(os_type) and (self.loaded is not None or len(self.oses) > 1)

    async def _load_builtin(self, builtin: BuiltinCommand) -> None:
        """Its id instead of a script (the editor says so, read-only), its parameters typed."""
        for os_type in self.oses:
            editor = self.editor(os_type)
            editor.text = builtin_script_note(builtin)
            editor.read_only = True
        await self.query_one(ParameterTable).load([
            CommandParameter(p.name, default=p.default or "", required=p.required)
            for p in builtin.parameters])
        self.query_one(LoadedCommand).show_builtin(builtin)
        self._pristine = self._state()

    def _show_missing(self, os_type: OsType) -> None:
        missing = self._says_missing(os_type)
        notice = self.query_one(f"#missing-{os_type}", Static)
        was_shown = notice.has_class("-shown")
        notice.set_class(missing, "-shown")
        if missing:
            notice.update(Text(missing_notice(os_type, self._count(os_type), self._loaded_name)))
        if missing != was_shown or self.loaded is not None:
            tabs = self.query_one(TabbedContent)
            tabs.get_tab(f"tab-{os_type}").label = self._tab_label(os_type)

    @on(TextArea.Changed)
    def _script_changed(self, event: TextArea.Changed) -> None:
        for os_type in self.oses:
            if event.text_area is self.editor(os_type):
                self._show_missing(os_type)

    def action_save(self) -> None:
        """Save the composer's scripts and parameters as a saved command (asks a name)."""
        timeout, problems = self.query_one(OptionsForm).timeout()
        if problems:
            self.notify(str(problems[0]), severity="error", markup=False)
            return
        params = self.query_one(ParameterTable).parameters_to_save
        commands = {CommandId.for_os(os): Command(CommandId.for_os(os), self.editor(os).text,
                                                  params, timeout)
                    for os in self.oses if self.editor(os).text.strip()}
        if self.loaded is not None:
            # Scripts for machines not selected here stay in the saved command.
            for command_id, script in self.loaded.scripts.items():
                if command_id.os not in self.oses:
                    commands[command_id] = Command(command_id, script, params, timeout)
        if not commands:
            self.notify("Nothing to save: write a script first", severity="warning")
            return
        name = suggested_name([self.editor(os).text for os in self.oses])
        self.app.push_screen(SaveCommandDialog(commands, saved_commands(self.app), self.loaded,
                                               name, self.query_one(ParameterTable).os_marks),
                             self._saved)

    def _saved(self, saved: SavedCommand | None) -> None:
        if saved is None:
            return
        self.loaded = saved
        self.query_one(LoadedCommand).show_saved(self.loaded)
        self._pristine = self._state()

    # -- which Azure API ------------------------------------------------------------------

    def action_cycle_api(self) -> None:
        """auto → managed → action → auto; shown above the footer unless auto."""
        if self.builtin is not None:
            self.notify(f"{self.builtin.id} is a built-in: it runs only through the action API",
                        severity="warning", markup=False)
            return
        self.api = next_api(self.api)
        note = self.query_one(ApiLine).show(self.api)
        if not any(m.kind in (MachineKind.VM, MachineKind.ARC) for m in self.machines):
            note += " (no Azure machine is selected: it changes nothing here)"
        self.notify(f"Azure API: {self.api.value}: {note}", markup=False)

    # -- parameters -----------------------------------------------------------------------

    async def action_add_parameter(self) -> None:
        await self.query_one(ParameterTable).add_row()

    def action_remove_parameter(self) -> None:
        table = self.query_one(ParameterTable)
        row = table.row_of(self.focused)
        if isinstance(row, TypedParameterRow):
            self.notify(f"{row.spec.name} is a parameter of the saved command: clear its "
                        "value instead (empty: the default, or not sent)", severity="warning",
                        markup=False)
        elif not table.remove_row(self.focused):
            self.notify("Move to a parameter row to remove it", severity="warning")

    def _parameter_problems(self) -> list[Problem]:
        """The typed rows' values checked by the core, each naming its parameter."""
        if self.loaded is None:
            return []
        rows = self.query_one(ParameterTable).typed_rows
        typed = replace(self.loaded, parameters=tuple(row.spec for row in rows))
        return [Problem(f"parameter {p.parameter}", p.message)
                for p in typed.check_values({row.spec.name: row.value for row in rows})]

    # -- run ------------------------------------------------------------------------------

    def left_out(self) -> list[str]:
        """Why machines of the selection are not in the run, one line per OS."""
        return [left_out_line(os_type, [m.name for m in self.machines if m.os is os_type],
                              self._loaded_name)
                for os_type in self.oses if self._says_missing(os_type)]

    @property
    def _loaded_name(self) -> str | None:
        return self.loaded.name if self.loaded is not None else None

    def build(self) -> tuple[RunRequest | None, list[Problem]]:
        """The request the form describes and every problem with it (errors and warnings)."""
        request, problems, uploads = self._plan()
        if request is None:
            return None, problems
        return request, problems + validate_selection(request.assignments,
                                                      uploads_scripts=uploads)

    def _plan(self) -> Plan:
        """The request, the form's own problems, and which machines' backends upload a big
        script (asked here, on the loop: the core's check may then run in a thread)."""
        values, problems = self.query_one(OptionsForm).read()
        if values is None:
            return None, problems, None
        oses = [os for os in self.oses if not self._missing(os)]
        if not oses and self.loaded is not None:
            return None, [no_script_problem(self.loaded.name, self.oses)], None
        if not oses:
            oses = self.oses  # nothing written anywhere: the core says the script is empty
        commands = {os_type: self._command(os_type, values) for os_type in oses}
        assignments = tuple((m, commands[m.os]) for m in self.machines if m.os in commands)
        # A script over the inline limit passes where the fleet's backend uploads it (Azure
        # with user-delegation output storage), as the app's gate (RunSession.plan) decides.
        fleet = getattr(self.app, "fleet", None)
        uploads = None
        if fleet is not None:
            asks = uploads_for(fleet.backends.for_machine)
            uploading = frozenset(m.id for m, _ in assignments if asks(m))
            uploads = lambda machine: machine.id in uploading  # noqa: E731
        request = RunRequest(assignments, values.fanout)
        return request, self._parameter_problems(), uploads

    # -- problems as you type -------------------------------------------------------------

    @on(TextArea.Changed)
    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Button.Pressed)
    def _edited(self) -> None:
        self.query_one(ProblemList).recheck_soon()

    @property
    def checking(self) -> bool:
        """Whether a check of the typing is due or under way (the list may still change)."""
        return self.query_one(ProblemList).checking

    def _command(self, os_type: OsType, values: OptionValues) -> Command:
        command_id = CommandId.for_os(os_type)
        script = "" if self.builtin is not None else self.editor(os_type).text
        # History names the saved command only while its script is unedited: an edited one
        # is an ad-hoc script that started from it.
        saved = self.loaded
        if saved is not None and not saved.matches_scripts(command_id, script):
            saved = None
        return Command(
            command_id=command_id,
            script=script,
            saved_command=saved.name if saved is not None else "",
            saved_hash=saved.content_hash() if saved is not None else "",
            parameters=self.query_one(ParameterTable).parameters_for(os_type),
            timeout=values.timeout,
            run_as_user=values.run_as_user,
            run_as_password=values.run_as_password,
            api=self.api,
            builtin=self.builtin.id if self.builtin is not None else "",
        )

    def action_run(self) -> None:
        request, problems = self.build()
        errors = [p for p in problems if p.is_error]
        self.query_one(ProblemList).show(errors)
        if request is None or errors:
            noun = "problem blocks" if len(errors) == 1 else "problems block"
            self.notify(f"{len(errors)} {noun} the run (listed above the footer)",
                        severity="error")
            return

        if not any(m.health.runnable for m, _ in request.assignments):
            # Every machine would be skipped: nothing would run, so there is nothing to
            # confirm. Say why (the permissions first: the one thing the user may not fix).
            why = nothing_runs_line([m for m, _ in request.assignments])
            self.query_one(ProblemList).show_line(why)
            self.notify(why, severity="error")
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.dismiss(request)

        dangerous = self.loaded.name if self.loaded is not None and self.loaded.dangerous \
            else ""
        self.app.push_screen(ConfirmRun(request, problems, self.left_out(),
                                        dangerous=dangerous), confirmed)

    def action_cancel(self) -> None:
        self.dismiss(None)
