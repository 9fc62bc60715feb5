"""The compose screen: a script per OS, parameters and options for the marked machines."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, Static, TabbedContent, TabPane, TextArea

from core.model import Command, CommandId, Machine, OsType
from core.validate import Problem, validate_selection
from tui import keymap
from tui.run_request import RunRequest
from tui.widgets.compose.confirm_run import ConfirmRun, problem_text
from tui.widgets.compose.options_form import OptionsForm, OptionValues
from tui.widgets.compose.parameter_table import ParameterTable
from tui.widgets.compose.script_editor import script_editor


class ComposeScreen(Screen[RunRequest | None]):
    """Compose a run for ``machines``; dismisses with a RunRequest, or None on esc.

    Linux machines get a RunShellScript, Windows ones a RunPowerShellScript: there is one
    editor per OS present in the selection. ctrl+enter (or ctrl+r) checks everything with
    the rules the CLI uses and asks for confirmation; errors block the run.

    Args:
        machines: The marked machines, in the order they are shown.
    """

    BINDINGS = keymap.COMPOSE
    DEFAULT_CSS = """
    ComposeScreen #scripts { height: 1fr; }
    ComposeScreen TabPane { padding: 0; }
    ComposeScreen TextArea { height: 1fr; }
    ComposeScreen .section { padding: 0 1; text-style: bold; }
    ComposeScreen #problems { height: auto; max-height: 8; padding: 0 1; }
    """

    def __init__(self, machines: Sequence[Machine]) -> None:
        super().__init__()
        self.machines = list(machines)
        self.oses = [os for os in OsType if any(m.os is os for m in self.machines)]

    def compose(self) -> ComposeResult:
        yield Header()
        with TabbedContent(id="scripts"):
            for os_type in self.oses:
                count = sum(1 for m in self.machines if m.os is os_type)
                with TabPane(f"{CommandId.for_os(os_type)} · {count} {os_type}",
                             id=f"tab-{os_type}"):
                    yield script_editor(os_type)
        yield Label("Parameters (ctrl+n adds, ctrl+o removes; empty name = positional)",
                    classes="section")
        yield ParameterTable(id="parameters")
        yield OptionsForm(id="options")
        yield Static(id="problems")
        yield Footer()

    def on_mount(self) -> None:
        by_os = ", ".join(f"{sum(1 for m in self.machines if m.os is o)} {o}" for o in self.oses)
        self.sub_title = f"compose for {len(self.machines)} machines ({by_os or 'none'})"
        editors = self.query(TextArea)
        if editors:
            editors.first().focus()

    def editor(self, os_type: OsType) -> TextArea:
        return self.query_one(f"#script-{os_type}", TextArea)

    # -- parameters -----------------------------------------------------------------------

    async def action_add_parameter(self) -> None:
        await self.query_one(ParameterTable).add_row()

    def action_remove_parameter(self) -> None:
        if not self.query_one(ParameterTable).remove_row(self.focused):
            self.notify("Move to a parameter row to remove it", severity="warning")

    # -- run ------------------------------------------------------------------------------

    def build(self) -> tuple[RunRequest | None, list[Problem]]:
        """The request the form describes and every problem with it (errors and warnings)."""
        values, problems = self.query_one(OptionsForm).read()
        if values is None:
            return None, problems
        commands = {os_type: self._command(os_type, values) for os_type in self.oses}
        assignments = tuple((m, commands[m.os]) for m in self.machines)
        problems = validate_selection(assignments)
        return RunRequest(assignments, values.fanout), problems

    def _command(self, os_type: OsType, values: OptionValues) -> Command:
        return Command(
            command_id=CommandId.for_os(os_type),
            script=self.editor(os_type).text,
            parameters=self.query_one(ParameterTable).parameters,
            timeout=values.timeout,
            run_as_user=values.run_as_user,
            run_as_password=values.run_as_password,
        )

    def action_run(self) -> None:
        request, problems = self.build()
        errors = [p for p in problems if p.is_error]
        self.query_one("#problems", Static).update(Group(*(problem_text(p) for p in errors)))
        if request is None or errors:
            noun = "problem blocks" if len(errors) == 1 else "problems block"
            self.notify(f"{len(errors)} {noun} the run (listed above the footer)",
                        severity="error")
            return

        def confirmed(ok: bool | None) -> None:
            if ok:
                self.dismiss(request)

        self.app.push_screen(ConfirmRun(request, problems), confirmed)

    def action_cancel(self) -> None:
        self.dismiss(None)
