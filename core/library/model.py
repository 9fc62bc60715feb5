"""Saved commands in memory: their parameters, and how one becomes a runnable Command.

Nothing here reads or writes files (see :mod:`core.library.files`). Messages never quote
the value of a protected parameter: it may be a secret.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.errors import BadInputError
from core.model import Command, CommandId, OsType, Parameter
from core.safe_regex import PatternError, PatternTooComplex, full_match

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""What a saved command's name may be: it is typed after ``:run`` and ``--command`` and
becomes the file name, so no spaces, slashes or leading dots."""

NAME_RULE = (
    "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit "
    "(e.g. disk-usage)"
)

PARAMETER_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A parameter becomes an environment variable (Linux) and a ``-Name`` (PowerShell)."""

PARAMETER_NAME_RULE = "letters, digits and _, not starting with a digit"

SCRIPT_KEYS: dict[str, CommandId] = {"shell": CommandId.SHELL, "powershell": CommandId.POWERSHELL}
"""The ``[scripts]`` keys of a file and the run command type each one is."""

SCRIPT_KEY_FOR: dict[CommandId, str] = {v: k for k, v in SCRIPT_KEYS.items()}


class LibraryError(BadInputError, ValueError):
    """A saved command that cannot be used or saved; the message says what and why."""


@dataclass(frozen=True, slots=True)
class ParameterProblem:
    """A value that does not fit a parameter: which parameter, and what is allowed."""

    parameter: str
    message: str

    def __str__(self) -> str:
        return f"parameter {self.parameter!r}: {self.message}"


class ParameterError(LibraryError):
    """Values that do not fit a command's parameter table; ``problems`` lists each one."""

    def __init__(self, command: str, problems: list[ParameterProblem]) -> None:
        self.command = command
        self.problems = problems
        super().__init__("\n".join(f"{command}: {p}" for p in problems))


@dataclass(frozen=True, slots=True)
class CommandParameter:
    """One entry of a saved command's parameter table.

    Attributes:
        name: the environment variable (Linux) and ``-Name`` (PowerShell) it becomes.
        description: what it is, for people.
        default: used when no value is given; never set for a protected parameter.
        required: a run needs a non-empty value (given, or the default).
        protected: sent as a protected parameter; its value is never stored or shown.
        choices: the only values allowed, when not empty.
        pattern: a regular expression a non-empty value must match as a whole.
        os: the only OS whose machines get it (the composer's per-row mark); None: both.
    """

    name: str
    description: str = ""
    default: str = ""
    required: bool = False
    protected: bool = False
    choices: tuple[str, ...] = ()
    pattern: str = ""
    os: OsType | None = None

    def sent_to(self, os_type: OsType) -> bool:
        """Whether ``os_type``'s machines get this parameter."""
        return self.os is None or self.os is os_type

    def allowed(self) -> str:
        """What values are allowed, in words (for messages and help)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.pattern:
            return f"a value matching {self.pattern}"
        return "any value"

    def check(self, value: str) -> str | None:
        """Why ``value`` does not fit, or None when it does. Never quotes a protected value."""
        shown = "the value" if self.protected else repr(value)
        if value == "":
            return "is required; give a value" if self.required else None
        if self.choices and value not in self.choices:
            return f"{shown} is not allowed; use {self.allowed()}"
        if self.pattern:
            try:
                matched = full_match(self.pattern, value)
            except PatternTooComplex as exc:
                # Neither a match nor a mismatch: say so rather than guess either way.
                return (f"pattern too complex to check {'the' if self.protected else 'this'} "
                        f"value against ({exc}); simplify the saved command's pattern")
            except PatternError as exc:
                return f"pattern is not a valid regular expression ({exc})"
            if not matched:
                return f"{shown} is not allowed; use {self.allowed()}"
        return None


@dataclass(frozen=True)
class SavedCommand:
    """A command kept in the library: scripts per OS and a typed parameter table.

    Attributes:
        name: unique in the library; see :data:`NAME_PATTERN`.
        description: one line, for the palette and ``fleetrun commands list``.
        tags: words to search and group by.
        scripts: RunShellScript (Linux) and/or RunPowerShellScript (Windows) text.
        parameters: the parameter table, in the order shown to people.
        timeout: default seconds per machine (0 = no limit); None leaves the run's default.
        dangerous: it changes state; running it needs a typed confirmation.
        path: the file it was loaded from or saved to (None when not from a file).
        builtin: it ships with fleetrun (the starter library).
    """

    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    scripts: dict[CommandId, str] = field(default_factory=dict)
    parameters: tuple[CommandParameter, ...] = ()
    timeout: int | None = None
    dangerous: bool = False
    path: Path | None = None
    builtin: bool = False

    def os_types(self) -> tuple[OsType, ...]:
        """The operating systems it has a script for, Linux first."""
        return tuple(c.os for c in (CommandId.SHELL, CommandId.POWERSHELL) if c in self.scripts)

    def parameter(self, name: str) -> CommandParameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def check_values(self, values: Mapping[str, str]) -> list[ParameterProblem]:
        """Every way ``values`` (name → value; defaults fill the rest) misfit the table."""
        problems = [
            ParameterProblem(name, "is not a parameter of this command; it takes "
                             + (", ".join(p.name for p in self.parameters) or "none"))
            for name in values if self.parameter(name) is None
        ]
        for param in self.parameters:
            why = param.check(self.value_of(param, values))
            if why is not None:
                problems.append(ParameterProblem(param.name, why))
        return problems

    @staticmethod
    def value_of(param: CommandParameter, values: Mapping[str, str]) -> str:
        given = values.get(param.name, "")
        return given if given != "" else param.default

    def command_for(self, command_id: CommandId, values: Mapping[str, str]) -> Command:
        """The runnable command for one OS, with ``values`` checked and defaults filled in.

        Empty values are left out: both handlers skip a parameter whose value is empty, so
        scripts see an unset variable (Linux) or their ``param()`` default (PowerShell).

        Raises:
            LibraryError: there is no script for ``command_id``.
            ParameterError: a value is missing, unknown or not allowed (each one named).
        """
        script = self.scripts.get(command_id)
        if script is None:
            have = ", ".join(SCRIPT_KEY_FOR[c] for c in self.scripts) or "none"
            raise LibraryError(
                f"{self.name}: no {SCRIPT_KEY_FOR[command_id]} script for "
                f"{command_id.os.value} machines (it has: {have})"
            )
        problems = self.check_values(values)
        if problems:
            raise ParameterError(self.name, problems)
        parameters = tuple(
            Parameter(p.name, value, protected=p.protected)
            for p in self.parameters
            if p.sent_to(command_id.os) and (value := self.value_of(p, values)) != ""
        )
        made = Command(command_id=command_id, script=script, parameters=parameters,
                       saved_command=self.name, saved_hash=self.content_hash())
        return made if self.timeout is None else replace(made, timeout=self.timeout)

    def content_hash(self) -> str:
        """A short hash of what runs (scripts, parameter table, timeout): history tells two
        versions of one name apart by it. Description, tags and the file's place are left
        out, as they change nothing that runs."""
        content = {
            "scripts": {str(k): v for k, v in sorted(self.scripts.items())},
            # An OS mark changes what runs; it is appended only when set, so the hashes of
            # commands without one stay what history already recorded.
            "parameters": [
                [p.name, p.default, p.required, p.protected, list(p.choices), p.pattern]
                + ([str(p.os)] if p.os is not None else [])
                for p in self.parameters
            ],
            "timeout": self.timeout,
            "dangerous": self.dangerous,
        }
        text = json.dumps(content, sort_keys=True, ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def matches_scripts(self, command_id: CommandId, script: str) -> bool:
        """Whether ``script`` is this command's script for ``command_id``, unedited."""
        return self.scripts.get(command_id) == script


@dataclass(frozen=True, slots=True)
class LibraryProblem:
    """A library file that could not be loaded (it is skipped; the others load).

    Attributes:
        path: the file.
        message: names the file, the field (``parameters[1].pattern``) and what is wrong.
    """

    path: Path
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class Library:
    """Every saved command that loaded, by name, and the files that did not.

    Attributes:
        commands: by name; a user file overrides a starter command of the same name.
        problems: the files skipped, each with the field at fault.
        overridden: names of starter commands a user file replaced.
    """

    commands: dict[str, SavedCommand] = field(default_factory=dict)
    problems: list[LibraryProblem] = field(default_factory=list)
    overridden: frozenset[str] = frozenset()

    def get(self, name: str) -> SavedCommand:
        """The command called ``name`` (exactly, else case-insensitively).

        Raises:
            LibraryError: no such command; the message suggests close names.
        """
        found = self.commands.get(name)
        if found is not None:
            return found
        folded = [c for n, c in self.commands.items() if n.casefold() == name.casefold()]
        if len(folded) == 1:
            return folded[0]
        import difflib

        close = difflib.get_close_matches(name, list(self.commands), n=3, cutoff=0.75)
        hints = [f"did you mean {' or '.join(close)}?"] if close else []
        hints += [f"{p.path} did not load" for p in self.problems if p.path.stem == name]
        hint = f" ({'; '.join(hints)})" if hints else ""
        raise LibraryError(f"no saved command {name!r}{hint}; "
                           "'fleetrun commands list' shows them all")

    def sorted(self) -> list[SavedCommand]:
        return sorted(self.commands.values(), key=lambda c: c.name.casefold())


def suggest_name(text: str) -> str:
    """A valid command name made from free text ("Check disk usage!" → "check-disk-usage")."""
    words = re.findall(r"[A-Za-z0-9]+", text.lower())
    return "-".join(words)[:64].strip("-") or "command"
