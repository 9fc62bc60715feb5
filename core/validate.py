"""The Run Command service's rules as code, checked before anything is sent.

Every problem names the field it is about and says both what is wrong and what is allowed,
so the CLI and the TUI can show it as is. Secrets never appear in a message: protected
parameter values and the run-as password are referred to by parameter name or index only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from core.errors import BadInputError
from core.model import Command, CommandId, Machine, MachineKind, OsType, Parameter

__all__ = [
    "MAX_SCRIPT_BYTES",
    "MAX_TIMEOUT",
    "Limit",
    "Problem",
    "Severity",
    "ValidationError",
    "parse_limit",
    "raise_if_errors",
    "split_runnable",
    "validate_command",
    "validate_selection",
]

Severity = Literal["error", "warning"]

MAX_SCRIPT_BYTES = 256 * 1024
"""Inline script limit. The managed handlers document none; the action handler caps its
script at 256 KiB and the Linux managed handler carries the same (unused) constant, so
staying under it is safe on every path."""

MAX_TIMEOUT = 7 * 24 * 3600
"""Our own ceiling (7 days): the service documents no maximum; this catches typos."""

MAX_SHOWN_MACHINES = 5
"""How many machine names a problem lists before saying "and N more"."""

_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The Linux handler puts the user name into a shell command line (sudo -u USER), so no
# backslash there; Windows accepts DOMAIN\user and .\user (the local machine).
_LINUX_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.@-]{0,63}")
_WINDOWS_USER = re.compile(
    r"(?:(?:\.|[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})\\)?"  # optional DOMAIN\ or .\
    r"[A-Za-z_][A-Za-z0-9_.@-]{0,63}"
)
# Unnamed Linux values are appended unquoted to `bash -c "<script> v1 v2"`; anything
# outside this set is split or interpreted by the shell.
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]*")

_LIMIT = re.compile(r"\s*([+-]?[0-9]+)\s*(%?)\s*")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong (or worth a warning) with what is about to be sent.

    Attributes:
        field: what it is about: ``script``, ``timeout``, ``parameters[2].name``,
            ``selection``, ``concurrency``, ``max_errors``, ``run_as_user``,
            ``run_as_password``.
        message: what is wrong and what is allowed; never contains a secret.
        severity: ``error`` stops the run; ``warning`` is shown and the run goes on.
    """

    field: str
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        prefix = "" if self.is_error else "warning: "
        return f"{self.field}: {prefix}{self.message}"


class ValidationError(BadInputError, ValueError):
    """Input that must not be sent; ``problems`` lists every problem found.

    ``str()`` is one ``field: message`` line per problem (warnings marked ``warning:``).

    Args:
        problems: the problems; warnings collected alongside errors are kept too, so that
            nothing already found is lost.
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def raise_if_errors(problems: Iterable[Problem]) -> None:
    """Raises ValidationError carrying all the problems if any of them is an error.

    Raises:
        ValidationError: at least one problem has severity ``error``.
    """
    problems = list(problems)
    if any(p.is_error for p in problems):
        raise ValidationError(problems)


# -- commands -----------------------------------------------------------------------------


def validate_command(command: Command, *, azure_targets: bool = True,
                     may_upload: bool = False) -> list[Problem]:
    """Checks one command against the service's rules.

    Parameters are referred to as ``parameters[i]`` with ``i`` their 0-based position in
    ``command.parameters`` (the order the user gave them).

    Args:
        command: the command to check.
        azure_targets: whether Azure's handler will run it. Only that handler appends
            unnamed values unquoted and starts a run-as script through sudo; our local and
            SSH backends do neither, so the warnings about them are left out when no Azure
            machine gets the command.

    Returns:
        The problems found, in field order (script, timeout, parameters, run-as); empty
        when the command can be sent as is.
    """
    problems: list[Problem] = []
    if not command.builtin:  # a built-in command id runs its own script
        problems += _check_script(command.script, may_upload, azure_targets)
    problems += _check_timeout(command.timeout)
    problems += _check_parameters(command, azure_targets)
    problems += _check_run_as(command, azure_targets)
    return problems


def script_bytes(script: str) -> int:
    """The script's size in UTF-8; a lone surrogate still counts (3 bytes), no crash."""
    return len(script.encode("utf-8", "surrogatepass"))


def too_big_inline(script: str) -> bool:
    """Whether a script is over the inline limit (it must then go by ``scriptUri``)."""
    return script_bytes(script) > MAX_SCRIPT_BYTES


def _check_script(script: str, may_upload: bool = False,
                  azure_targets: bool = False) -> list[Problem]:
    if not script.strip():
        return [Problem("script", "the script is empty; give at least one command to run")]
    size = script_bytes(script)
    if size > MAX_SCRIPT_BYTES and not may_upload:
        return [
            Problem(
                "script",
                f"the script is {size:,} bytes (UTF-8); the limit for an inline script is "
                f"{MAX_SCRIPT_BYTES:,} bytes (256 KiB); shorten it, or have a small script "
                "download the rest" + (
                    "; or, for Azure machines, run `fleetrun azure setup-output --account "
                    "NAME` once: fleetrun then uploads a big script to your storage and "
                    "passes its URL (scriptUri)" if azure_targets else ""),
            )
        ]
    return []


def _check_timeout(timeout: object) -> list[Problem]:
    # Typed as int, but commands also come from TOML and JSON: check what actually arrived.
    allowed = (
        f"use whole seconds from 0 to {MAX_TIMEOUT:,} (7 days); 0 means no limit "
        "(the handler then never stops the script)"
    )
    if not isinstance(timeout, int) or isinstance(timeout, bool):
        return [Problem("timeout", f"{timeout!r} is not a whole number of seconds; {allowed}")]
    if not 0 <= timeout <= MAX_TIMEOUT:
        return [Problem("timeout", f"{timeout:,} seconds is out of range; {allowed}")]
    return []


def _check_parameters(command: Command, azure_targets: bool) -> list[Problem]:
    powershell = command.command_id is CommandId.POWERSHELL
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, param in enumerate(command.parameters):
        where = f"parameters[{index}]"
        label = _label(param, index)
        if not param.named:
            if powershell:
                problems.append(
                    Problem(
                        f"{where}.name",
                        f"{label} has no name; RunPowerShellScript passes parameters as "
                        "-Name value pairs, so every parameter needs a name matching a "
                        "param() of the script",
                    )
                )
        elif not _PARAM_NAME.fullmatch(param.name):
            becomes = "a PowerShell -Name" if powershell else "an environment variable"
            problems.append(
                Problem(
                    f"{where}.name",
                    f"{param.name!r} is not a valid parameter name (it becomes {becomes}); "
                    "use letters, digits and _, not starting with a digit",
                )
            )
        else:
            # PowerShell binds -Name case-insensitively; environment variables are not.
            key = param.name.lower() if powershell else param.name
            first = seen.setdefault(key, index)
            if first != index:
                other = command.parameters[first].name
                same = f" ({other!r} is the same name to PowerShell)" if other != param.name else ""
                case = "case-insensitively" if powershell else "case-sensitively"
                problems.append(
                    Problem(
                        f"{where}.name",
                        f"{param.name!r} is already used by parameters[{first}]{same}; "
                        f"parameter names must be unique ({case}, public and protected "
                        "together)",
                    )
                )
        problems += _check_value(command, param, index, label, azure_targets)
    return problems


def _label(param: Parameter, index: int) -> str:
    """How a message names a parameter: its name, never its value."""
    kind = "protected parameter" if param.protected else "parameter"
    return f"{kind} {param.name!r}" if param.named else f"unnamed {kind} [{index}]"


def _check_value(
    command: Command, param: Parameter, index: int, label: str, azure_targets: bool
) -> list[Problem]:
    where = f"parameters[{index}].value"
    # Nothing in this function may quote param.value: it can be a protected secret.
    if "\x00" in param.value:
        return [
            Problem(
                where,
                f"the value of {label} contains a NUL byte; values cannot carry NUL "
                "(environment variables and command lines end at it); remove it",
            )
        ]
    linux = command.command_id is CommandId.SHELL
    if param.value == "":
        if not linux and not param.named:
            return []  # already an error: an unnamed PowerShell parameter is never sent
        if not linux:
            message = (
                f"{label} has an empty value; how the Windows handler passes an empty value "
                "is undocumented, so the script may not get -"
                f"{param.name} at all; give the param() a default instead"
            )
        elif param.named:
            message = (
                f"the Linux handler drops parameters with empty values: ${param.name} will "
                "be unset, not empty; test with ${" + param.name + "-default} in the script "
                "or give a value"
            )
        else:
            message = _positional_shift_message(command, index, label)
        return [Problem(where, message, "warning")]
    if azure_targets and linux and not param.named and not _SHELL_SAFE.fullmatch(param.value):
        return [
            Problem(
                where,
                f"the value of {label} contains spaces or shell characters; the Linux "
                "handler appends unnamed values unquoted to the bash command line, so it "
                "may be split into several arguments or run as shell syntax; use a named "
                "parameter (an environment variable) for such values",
                "warning",
            )
        ]
    return []


def _positional_shift_message(command: Command, index: int, label: str) -> str:
    # Positions follow the handler's order (public first, then protected), not the given one.
    params = command.parameters
    order = [i for i, p in enumerate(params) if not p.protected]
    order += [i for i, p in enumerate(params) if p.protected]
    unnamed = [i for i in order if not params[i].named]
    position = unnamed.index(index) + 1
    later = any(params[i].value for i in unnamed[position:])
    effect = (
        f"the arguments after it shift left (${position + 1} becomes ${position})"
        if later
        else f"${position} will be unset"
    )
    return (
        f"the Linux handler drops parameters with empty values: {label} (${position}) is "
        f"left out and {effect}; give it a value"
    )


def _check_run_as(command: Command, azure_targets: bool) -> list[Problem]:
    problems: list[Problem] = []
    user = command.run_as_user
    if command.run_as_password and not user:
        problems.append(
            Problem(
                "run_as_password",
                "a run-as password was given without a run-as user; give run_as_user too, "
                "or leave the password out",
            )
        )
    if "\x00" in command.run_as_password:
        problems.append(
            Problem("run_as_password", "the password contains a NUL byte, which cannot be sent")
        )
    if not user:
        return problems
    windows = command.command_id.os is OsType.WINDOWS
    pattern = _WINDOWS_USER if windows else _LINUX_USER
    if not pattern.fullmatch(user):
        allowed = (
            "USER, DOMAIN\\USER or .\\USER; USER starts with a letter or _, then letters, "
            "digits, _ . @ - (at most 64)"
            if windows
            else "a letter or _, then letters, digits, _ . @ - (at most 64 characters; "
            "no backslash: the Linux handler passes it to sudo on a shell command line)"
        )
        shown = user if len(user) <= 80 else user[:77] + "..."
        problems.append(
            Problem("run_as_user", f"{shown!r} is not a valid user name; use {allowed}")
        )
    elif not windows and azure_targets and any(p.named for p in command.parameters):
        # Only Azure's handler uses sudo: fleetrun itself switches user on this machine and
        # hands the script its named parameters (and nothing else of its environment).
        problems.append(
            Problem(
                "run_as_user",
                "on Azure machines the Linux handler starts a run-as script through sudo, "
                "which normally resets the environment: named parameters (environment "
                "variables) may not reach the script. An unnamed value does, but on sudo's "
                "command line, which the machine's process list shows and the handler logs: "
                "keep protected values named",
                "warning",
            )
        )
    return problems


# -- selections ---------------------------------------------------------------------------


def validate_selection(pairs: Sequence[tuple[Machine, Command]], *,
                       uploads_scripts: Callable[[Machine], bool] | None = None,
                       ) -> list[Problem]:
    """Checks what is about to be sent where: the selection, then each distinct command.

    Args:
        pairs: each selected machine with the command it would get.
        uploads_scripts: whether a machine's backend can pass a script too big to send
            inline by URI (Azure with output storage in user-delegation mode); a command
            may then be over the inline limit when every machine it goes to can.

    Returns:
        Selection problems first, then each command's problems once, even when many
        machines share one command. When the selection holds several commands, each
        command problem's message starts with the command id so it is clear which.
    """
    if not pairs:
        return [
            Problem(
                "selection",
                "no machines selected; select at least one (check the target filter)",
            )
        ]
    problems: list[Problem] = []
    wrong_os: dict[CommandId, list[Machine]] = {}
    commands: dict[int, Command] = {}
    azure_bound: set[int] = set()
    inline_only: set[int] = set()
    for machine, command in pairs:
        commands.setdefault(id(command), command)
        if uploads_scripts is None or not uploads_scripts(machine):
            inline_only.add(id(command))
        if machine.kind in (MachineKind.VM, MachineKind.ARC):
            azure_bound.add(id(command))
        if command.command_id.os is not machine.os:
            wrong_os.setdefault(command.command_id, []).append(machine)
    for command_id, machines in wrong_os.items():
        problems.append(_wrong_os_problem(command_id, machines))

    several = len({c.command_id for c in commands.values()}) > 1
    seen: set[Problem] = set()
    for command in commands.values():
        for found in validate_command(command, azure_targets=id(command) in azure_bound,
                                      may_upload=id(command) not in inline_only):
            if several:
                message = f"{command.command_id}: {found.message}"
                found = Problem(found.field, message, found.severity)
            # Equal commands in separate objects would repeat the same problems.
            if found not in seen:
                seen.add(found)
                problems.append(found)
    return problems


def _wrong_os_problem(command_id: CommandId, machines: list[Machine]) -> Problem:
    wanted = command_id.os
    other = OsType.WINDOWS if wanted is OsType.LINUX else OsType.LINUX
    right = CommandId.for_os(other)
    names = ", ".join(m.name or m.id for m in machines[:MAX_SHOWN_MACHINES])
    more = len(machines) - MAX_SHOWN_MACHINES
    if more > 0:
        names += f" and {more} more"
    count = len(machines)
    noun = "machine" if count == 1 else "machines"
    return Problem(
        "selection",
        f"{command_id} runs only on {wanted} machines, but {count} {other} {noun} would "
        f"get it: {names}; give them a {right} command, or leave them out with "
        f"!os:{other}",
    )


# -- limits -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limit:
    """A count, or a percentage of the machines in a run.

    Attributes:
        value: the count, or the percentage (1-100) when ``percent``.
        percent: whether ``value`` is a percentage.
    """

    value: int
    percent: bool = False

    def resolve(self, total: int) -> int:
        """The count for a run of ``total`` machines.

        A percentage rounds up and is at least 1, so "10%" of 5 machines is 1, not 0.
        """
        if not self.percent:
            return self.value
        return max(1, -(-self.value * total // 100))

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


def parse_limit(text: str, *, field: str, minimum: int = 1) -> Limit:
    """Parses ``N`` or ``N%`` (as given to ``--concurrency`` or ``--max-errors``).

    Args:
        text: the text, e.g. ``"10"`` or ``"25%"``; surrounding spaces are ignored.
        field: the field the value is for, used in the error.
        minimum: the smallest count allowed.

    Returns:
        The limit.

    Raises:
        ValidationError: with one Problem naming ``field`` and what is allowed.
    """
    allowed = f"use N (at least {minimum}) or N% (1-100%)"
    match = _LIMIT.fullmatch(text)
    if match is None:
        raise ValidationError(
            [Problem(field, f"{text!r} is not a number or percentage; {allowed}")]
        )
    value = int(match.group(1))
    if match.group(2):
        if not 1 <= value <= 100:
            raise ValidationError(
                [Problem(field, f"{text.strip()!r} is not a percentage from 1 to 100; {allowed}")]
            )
        return Limit(value, percent=True)
    if value < minimum:
        raise ValidationError(
            [Problem(field, f"{text.strip()!r} is below the minimum of {minimum}; {allowed}")]
        )
    return Limit(value)


# -- health -------------------------------------------------------------------------------


def split_runnable(machines: Iterable[Machine]) -> tuple[list[Machine], list[Machine]]:
    """Splits machines into those a command can be sent to and those to skip.

    Unhealthy machines are skipped (shown as skipped, not failed); Unknown health is tried,
    since the run itself will tell.

    Returns:
        (runnable, skipped), each in the original order.
    """
    runnable: list[Machine] = []
    skipped: list[Machine] = []
    for machine in machines:
        (runnable if machine.health.runnable else skipped).append(machine)
    return runnable, skipped
