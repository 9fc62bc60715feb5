"""Turn ``fleetrun run`` flags into commands, with errors that name the flag."""

from __future__ import annotations

import getpass
import os
import sys
from argparse import Namespace
from pathlib import Path

from core.errors import BadInputError
from core.model import Command, CommandId, Parameter
from core.validate import Limit, ValidationError, parse_limit

SECRET_ENV_PREFIX = "FLEETRUN_SECRET_"
RUN_AS_PASSWORD_ENV = "FLEETRUN_SECRET_RUN_AS_PASSWORD"
DEFAULT_TIMEOUT = "3600"

# Core names fields by what they are; the user typed flags.
FLAG_FOR_FIELD = {
    "script": "--shell/--powershell/--command",
    "timeout": "--timeout",
    "concurrency": "--concurrency",
    "max_errors": "--max-errors",
    "selection": "--target",
    "run_as_user": "--run-as",
    "run_as_password": "--run-as-password",
}


class InputError(BadInputError, ValueError):
    """A flag's value is unusable; the message names the flag and what is allowed."""


def read_script(flag: str, value: str) -> tuple[str, str]:
    """The script text and the path it came from (``@FILE``), or the inline text."""
    if not value.startswith("@"):
        return value, ""
    path = Path(value[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        raise InputError(f"{flag}: no such file: {path}") from None
    except UnicodeDecodeError:
        raise InputError(f"{flag}: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{flag}: cannot read {path}: {exc.strerror}") from None


def read_secret(name: str, env_var: str, *, interactive: bool) -> str:
    """A secret from the terminal without echo, or from the environment with no terminal."""
    if interactive:
        try:
            return getpass.getpass(f"{name} (hidden): ")
        except EOFError:
            raise InputError(f"-P {name}: no value entered") from None
    value = os.environ.get(env_var)
    if value is None:
        raise InputError(
            f"-P {name}: no terminal to ask for the value; set {env_var} in the environment"
        )
    return value


def parameters_from(args: Namespace, *, interactive: bool) -> tuple[Parameter, ...]:
    params: list[Parameter] = []
    for raw in args.param:
        name, sep, value = raw.partition("=")
        if not sep:
            raise InputError(f"-p {raw!r}: expected NAME=VALUE (use -a VALUE for an unnamed one)")
        params.append(Parameter(name.strip(), value))
    params.extend(Parameter("", value) for value in args.arg)
    for name in args.protected:
        value = read_secret(name, SECRET_ENV_PREFIX + name, interactive=interactive)
        params.append(Parameter(name, value, protected=True))
    return tuple(params)


def timeout_from(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(
            f"--timeout: {text!r} is not a whole number of seconds (0 = no limit)"
        ) from None


def run_as_from(args: Namespace, *, interactive: bool) -> tuple[str, str]:
    """The --run-as user and, with --run-as-password, the password read without echo."""
    password = ""
    if args.run_as_password:
        if not args.run_as:
            raise InputError("--run-as-password: needs --run-as USER")
        password = read_secret(
            f"password for {args.run_as}", RUN_AS_PASSWORD_ENV, interactive=interactive
        )
    return args.run_as, password


def commands_from(args: Namespace) -> dict[CommandId, Command]:
    """One command per script type given (shell for Linux, PowerShell for Windows)."""
    if not args.shell and not args.powershell:
        raise InputError("give a script: --shell SCRIPT|@FILE and/or --powershell SCRIPT|@FILE, "
                         "or a saved one: --command NAME")
    interactive = sys.stdin.isatty()
    timeout = timeout_from(args.timeout if args.timeout is not None else DEFAULT_TIMEOUT)
    parameters = parameters_from(args, interactive=interactive)
    _, password = run_as_from(args, interactive=interactive)
    commands: dict[CommandId, Command] = {}
    for command_id, flag, value in (
        (CommandId.SHELL, "--shell", args.shell),
        (CommandId.POWERSHELL, "--powershell", args.powershell),
    ):
        if value:
            script, path = read_script(flag, value)
            commands[command_id] = Command(
                command_id=command_id,
                script=script,
                parameters=parameters,
                timeout=timeout,
                run_as_user=args.run_as,
                run_as_password=password,
                script_path=path,
            )
    return commands


def limit_from(text: str | None, field: str) -> Limit | None:
    if text is None:
        return None
    try:
        return parse_limit(text, field=field)
    except ValidationError as exc:
        raise InputError(describe_problems(exc)) from None


def describe_problems(exc: ValidationError) -> str:
    lines = []
    for problem in exc.problems:
        label = FLAG_FOR_FIELD.get(problem.field.split("[")[0], problem.field)
        if problem.field.startswith("parameters"):
            label = f"parameter {problem.field.removeprefix('parameters')}"
        kind = "warning: " if problem.severity == "warning" else ""
        lines.append(f"{label}: {kind}{problem.message}")
    return "\n".join(lines)
