"""The confirmation before a run: targets per OS, skipped machines, masked parameters.

A saved command marked ``dangerous`` (it changes state) is not confirmed by enter alone: the
number of machines it will run on has to be typed first.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from core.azure.permissions import permission_line
from core.model import REDACTED, Command, HealthStatus, Machine, OsType
from core.skip_reasons import fold_names, skip_groups
from core.validate import Problem, split_runnable
from tui import keymap
from tui.run_request import RunRequest

FIELD_LABELS = {
    "script": "script",
    "timeout": "timeout",
    "concurrency": "concurrency",
    "max_errors": "error budget",
    "run_as_user": "run-as user",
    "run_as_password": "run-as password",
    "selection": "selection",
}
_PARAM_FIELD = re.compile(r"parameters\[(\d+)\]\.(\w+)")


def field_label(field: str) -> str:
    """The form's name for a Problem's field: ``parameters[1].name`` is parameter 2's name."""
    match = _PARAM_FIELD.fullmatch(field)
    if match:
        return f"parameter {int(match.group(1)) + 1} {match.group(2)}"
    return FIELD_LABELS.get(field, field)


def problem_text(problem: Problem) -> Text:
    """One line per problem; messages never hold secrets (core/validate.py sees to it)."""
    style = "red" if problem.is_error else "yellow"
    kind = "error" if problem.is_error else "warning"
    return Text.assemble((f"{field_label(problem.field)}: {kind}: ", f"bold {style}"),
                         problem.message)


def parameter_text(command: Command, whose: str = "") -> Text:
    """The parameters ``command`` sends (``whose``: `` for linux`` when the OS differ)."""
    if not command.parameters:
        return Text(f"parameters{whose}: none", style="dim")
    text = Text(f"parameters{whose}:")
    for index, param in enumerate(command.parameters, 1):
        shown = param.redacted()["value"]
        name = param.name or "(positional)"
        lock = " (protected)" if param.protected else ""
        text.append(f"\n  {index}. {name} = {shown}{lock}")
    return text


def summary(request: RunRequest, warnings: Sequence[Problem], left_out: Sequence[str] = (),
            *, dangerous: bool = False) -> Group:
    """What is about to happen, with every secret replaced by ``***``.

    Args:
        request: The run.
        warnings: Problems that do not block it.
        left_out: Why some selected machines are not in the run (one line each).
        dangerous: The run needs a typed confirmation (the last line says so).
    """
    machines = [m for m, _ in request.assignments]
    runnable, skipped = split_runnable(machines)
    lines: list[RenderableType] = []
    if (permitted := permission_line(machines)) is not None:
        lines.append(Text(permitted, style="bold yellow"))
    lines += [Text(line, style="yellow") for line in left_out]
    for os_type in OsType:
        on_os = [m for m in runnable if m.os is os_type]
        if any(m.os is os_type for m in machines):
            lines.append(Text(f"{len(on_os)} {os_type} machine(s) will run "
                              f"{_command_for(request, os_type).command_id}", style="bold"))
    if skipped:
        # The permission line above already says what the NotPermitted ones need.
        explained = {HealthStatus.NOT_PERMITTED} if permitted is not None else set()
        lines += skipped_lines(skipped, explained=explained)
    command = request.assignments[0][1]
    per_os = {os_type: _command_for(request, os_type) for os_type in OsType
              if any(m.os is os_type for m in machines)}
    if len({c.parameters for c in per_os.values()}) > 1:
        # Marked per OS (or positional: Linux only): say what each OS's machines get.
        lines += [parameter_text(c, f" for {os_type}") for os_type, c in per_os.items()]
    else:
        lines.append(parameter_text(command))
    timeout = f"{command.timeout} s" if command.timeout else "no limit"
    options = request.options
    lines.append(Text(f"timeout: {timeout} · concurrency: {options.concurrency or 'all'} · "
                      f"error budget: {options.max_errors or 'none'}"))
    if command.run_as_user:
        password = f" (password {REDACTED})" if command.run_as_password else ""
        lines.append(Text(f"run as: {command.run_as_user}{password}"))
    lines += [problem_text(p) for p in warnings]
    if not dangerous:
        lines.append(Text("enter runs · esc goes back", style="dim"))
    return Group(*lines)


def nothing_runs_line(machines: Sequence[Machine]) -> str:
    """Why a run in which every machine would be skipped is not offered, in one line: the
    counts per health status, then what the caller's Azure role lacks, if anything."""
    counts = ", ".join(f"{len(g.machines)} {g.words}" for g in skip_groups(machines))
    line = f"nothing would run: every selected machine would be skipped ({counts})"
    permitted = permission_line(machines)
    return f"{line}; {permitted}" if permitted else line


SUMMARY_WIDTH = 74
"""The summary's columns in an 80-column terminal (the box's border and padding take 6):
lists of machine names are folded to fit it, so none wraps at 80x24."""
MAX_REASONS = 4
"""Reasons shown per status; the rest are counted (each machine's details say its own)."""


def skipped_lines(skipped: Sequence[Machine], *,
                  explained: Collection[HealthStatus] = ()) -> list[RenderableType]:
    """Why machines will be skipped, per health status: the machines, the reason they share
    and the commands that lift it (never cut: they are to be copied; a long one wraps
    under its own indent). Statuses in ``explained`` are said elsewhere: names only."""
    lines: list[RenderableType] = [
        Text(f"{len(skipped)} machine(s) will be skipped:", style="yellow")]
    for group in skip_groups(skipped):
        # Each reason names its machines; the heading does when one reason or hidden ones
        # leave some unnamed.
        said = group.status in explained
        named = said or len(group.reasons) == 1 or len(group.reasons) > MAX_REASONS
        head = f"{len(group.machines)} {group.words}" + (": " if named else "")
        names = fold_names(group.machines, SUMMARY_WIDTH - 2 - len(head)) if named else ""
        lines.append(_indented(Text.assemble((head, "bold yellow"), names), 2))
        if said:
            continue
        if len(group.reasons) == 1:
            [reason] = group.reasons
            lines += _reason_lines(reason.detail, reason.remedy, 4)
            continue
        for reason in group.reasons[:MAX_REASONS]:
            names = fold_names(reason.machines, SUMMARY_WIDTH // 2)
            lines.append(_indented(Text.assemble(
                names, (f": {reason.detail}" if reason.detail else "", "dim")), 4))
            lines += _reason_lines("", reason.remedy, 6)
        hidden = len(group.reasons) - MAX_REASONS
        if hidden > 0:
            lines.append(_indented(Text(f"… {hidden} other reason(s): see each machine's "
                                        "details", style="dim"), 4))
    return lines


def _reason_lines(detail: str, remedy: str, indent: int) -> list[RenderableType]:
    lines: list[RenderableType] = (
        [_indented(Text(detail, style="dim"), indent)] if detail else [])
    if remedy:
        lines.append(_indented(Text.assemble(("to lift it: ", "dim"), remedy), indent))
    return lines


def _indented(text: Text, columns: int) -> Padding:
    """``text`` ``columns`` in, its wrapped lines too."""
    return Padding(text, (0, 0, 0, columns))


def _command_for(request: RunRequest, os_type: OsType) -> Command:
    return next(c for m, c in request.assignments if m.os is os_type)


class ConfirmRun(ModalScreen[bool]):
    """Asks before running; dismisses True on enter, False on esc.

    Args:
        request: The run.
        warnings: Problems that do not block it.
        left_out: Why some selected machines are not in the run (one line each).
        dangerous: The saved command's name when it is marked dangerous: enter runs only
            once the number of machines it will run on is typed.
    """

    BINDINGS = keymap.COMPOSE_CONFIRM
    DEFAULT_CSS = """
    ConfirmRun { align: center middle; }
    ConfirmRun > VerticalScroll {
        width: 100; max-width: 100%; height: auto; max-height: 80%;
        border: thick $warning; background: $surface; padding: 1 2;
    }
    ConfirmRun.-dangerous > VerticalScroll { border: thick $error; }
    ConfirmRun #danger { margin-top: 1; color: $text-error; text-style: bold; }
    ConfirmRun #typed-error { color: $text-error; height: auto; }
    ConfirmRun #typed-error.-empty { display: none; }
    """

    def __init__(self, request: RunRequest, warnings: Sequence[Problem],
                 left_out: Sequence[str] = (), *, dangerous: str = "") -> None:
        super().__init__(classes="-dangerous" if dangerous else "")
        self.request = request
        self.warnings = list(warnings)
        self.left_out = list(left_out)
        self.dangerous = dangerous
        runnable, _ = split_runnable(m for m, _ in request.assignments)
        self.target_count = len(runnable)
        """What a dangerous run asks to be typed: the number of machines it will run on."""

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(summary(self.request, self.warnings, self.left_out,
                                 dangerous=bool(self.dangerous)), id="summary")
            if self.dangerous:
                yield Static(f"⚠ {self.dangerous} is marked dangerous: it changes state on "
                             f"{self.target_count} machine(s). Type {self.target_count} "
                             "and press enter to run it; esc goes back.", id="danger",
                             markup=False)
                yield Input(placeholder=f"type {self.target_count} to run", id="typed",
                            restrict=r"[0-9]*")
                yield Static(id="typed-error", classes="-empty", markup=False)

    def on_mount(self) -> None:
        if self.dangerous:
            self.query_one("#typed", Input).focus()

    @on(Input.Submitted, "#typed")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        if not self.dangerous:
            self.dismiss(True)
            return
        typed = self.query_one("#typed", Input)
        if typed.value.strip() == str(self.target_count):
            self.dismiss(True)
            return
        said = f"{typed.value.strip()!r} is not {self.target_count}" if typed.value.strip() \
            else "Nothing typed"
        error = self.query_one("#typed-error", Static)
        error.remove_class("-empty")
        error.update(
            f"{said}: type {self.target_count}, the number of machines it will run on, "
            "to run it (esc goes back)")
        typed.value = ""
        typed.focus()

    def action_cancel(self) -> None:
        self.dismiss(False)
