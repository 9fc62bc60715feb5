"""Saved commands on disk: one TOML file per command, checked field by field.

Read with tomllib, written with tomli-w. A file that cannot be used is reported as a
:class:`LibraryProblem` naming its path and the field at fault, and skipped; the others
load. The format is described in :mod:`core.library`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from core import config
from core.atomic_files import replace_file
from core.errors import BadInputError
from core.field_names import shown_key
from core.library.model import (
    NAME_PATTERN,
    NAME_RULE,
    PARAMETER_NAME_PATTERN,
    PARAMETER_NAME_RULE,
    SCRIPT_KEY_FOR,
    SCRIPT_KEYS,
    CommandParameter,
    Library,
    LibraryError,
    LibraryProblem,
    SavedCommand,
)
from core.model import Command, CommandId, OsType
from core.safe_regex import PatternError, compile_pattern
from core.toml_text import parse_toml
from core.trusted_files import UntrustedFileError, check_trusted
from core.validate import MAX_TIMEOUT

STARTER_PACKAGE = "core.starter_commands"
MAX_FILE_BYTES = 1024 * 1024
"""A saved command is a few KB; anything this big is not one."""

TOP_KEYS = ("name", "description", "tags", "timeout", "dangerous", "parameters", "scripts")
PARAMETER_KEYS = ("name", "description", "default", "required", "protected", "choices",
                  "pattern", "os")
PARAMETER_OS_VALUES: dict[str, OsType | None] = {
    "linux": OsType.LINUX, "windows": OsType.WINDOWS, "both": None}
"""A parameter's ``os`` key: the only OS whose machines get it; omitted (or both) for both."""

POWERSHELL_RESERVED = frozenset({
    "args", "error", "executioncontext", "false", "home", "host", "input", "matches",
    "myinvocation", "null", "pid", "psboundparameters", "pscmdlet", "pshome", "psitem",
    "shellid", "this", "true",
})
"""Automatic variables a ``param()`` cannot declare (read-only, constant or magic)."""

SHELL_RESERVED = frozenset({
    "BASH_ENV", "BASHOPTS", "CDPATH", "ENV", "EUID", "GLOBIGNORE", "HOME", "HOSTNAME", "IFS",
    "LD_LIBRARY_PATH", "LD_PRELOAD", "OLDPWD", "PATH", "PS4", "PWD", "SHELL", "SHELLOPTS",
    "UID", "USER",
})
"""Environment variables bash, the loader or the handler depend on: not parameter names."""

HEADER = (
    "# A fleetrun saved command (one per file). Edit freely: fleetrun reads it again on\n"
    "# start. Fields are described in README.md, 'Saved commands'. Protected parameter\n"
    "# values are never written here.\n\n"
)


class _FieldError(BadInputError):
    """A field that does not fit; turned into a LibraryProblem naming the file."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}", where=where)


def default_user_dir() -> Path:
    """Where the user's saved commands live: ``<config dir>/commands``."""
    return config.config_dir() / "commands"


# -- reading -------------------------------------------------------------------------------


def parse_command(data: Mapping[str, Any], *, path: Path | None = None,
                  builtin: bool = False) -> SavedCommand:
    """A checked saved command from already-parsed TOML.

    Raises:
        LibraryError: a field is missing, of the wrong type, unknown or not allowed; the
            message names the field (``parameters[1].pattern``) and what is allowed.
    """
    try:
        return _parse(data, path, builtin)
    except _FieldError as exc:
        raise LibraryError(str(exc)) from None


def _parse(data: Mapping[str, Any], path: Path | None, builtin: bool) -> SavedCommand:
    _only(data, "", TOP_KEYS)
    name = _string(data, "name", "", required=True)
    if not NAME_PATTERN.fullmatch(name):
        raise _FieldError("name", f"{name!r} is not allowed; use {NAME_RULE}")
    tags = _strings(data, "tags", "")
    for index, tag in enumerate(tags):
        if not tag.strip() or tag != tag.strip() or " " in tag:
            raise _FieldError(f"tags[{index}]", f"{tag!r} is not a tag; use one word, no spaces")
    timeout = data.get("timeout")
    if timeout is not None and (not isinstance(timeout, int) or isinstance(timeout, bool)
                                or not 0 <= timeout <= MAX_TIMEOUT):
        raise _FieldError("timeout", f"{timeout!r} is not allowed; use whole seconds from 0 "
                          f"to {MAX_TIMEOUT} (0 = no limit)")
    scripts = _scripts(data.get("scripts"))
    parameters = _parameters(data.get("parameters", []))
    _check_reserved(parameters, scripts)
    return SavedCommand(
        name=name,
        description=_string(data, "description", ""),
        tags=tuple(dict.fromkeys(tags)),
        scripts=scripts,
        parameters=parameters,
        timeout=timeout,
        dangerous=_bool(data, "dangerous", ""),
        path=path,
        builtin=builtin,
    )


def _scripts(raw: object) -> dict[CommandId, str]:
    allowed = " and/or ".join(SCRIPT_KEYS)
    if raw is None:
        raise _FieldError("scripts", f"missing; add a [scripts] table with {allowed}")
    if not isinstance(raw, dict):
        raise _FieldError("scripts", f"must be a table with {allowed}")
    _only(raw, "scripts.", tuple(SCRIPT_KEYS))
    scripts: dict[CommandId, str] = {}
    for key, command_id in SCRIPT_KEYS.items():
        if key in raw:
            text = _string(raw, key, "scripts.")
            if not text.strip():
                raise _FieldError(f"scripts.{key}", "is empty; give the script or remove the key")
            scripts[command_id] = text
    if not scripts:
        raise _FieldError("scripts", f"has no script; give {allowed}")
    return scripts


def _check_reserved(params: tuple[CommandParameter, ...], scripts: Mapping[CommandId, str]
                    ) -> None:
    for index, param in enumerate(params):
        where = f"parameters[{index}].name"
        if CommandId.POWERSHELL in scripts and param.name.lower() in POWERSHELL_RESERVED:
            raise _FieldError(where, f"{param.name!r} cannot be a PowerShell parameter "
                              f"(${param.name} is an automatic variable); choose another name")
        if CommandId.SHELL in scripts and param.name in SHELL_RESERVED:
            raise _FieldError(where, f"{param.name!r} would replace the shell's own "
                              f"${param.name}; choose another name")


def _parameters(raw: object) -> tuple[CommandParameter, ...]:
    if not isinstance(raw, list):
        raise _FieldError("parameters", "must be an array of tables ([[parameters]] entries)")
    params: list[CommandParameter] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw):
        where = f"parameters[{index}]."
        if not isinstance(entry, dict):
            raise _FieldError(f"parameters[{index}]", "must be a table ([[parameters]])")
        param = _parameter(entry, where)
        # PowerShell binds -Name case-insensitively: Host and host would be one parameter.
        first = seen.setdefault(param.name.lower(), index)
        if first != index:
            raise _FieldError(f"{where}name", f"{param.name!r} is already parameters[{first}]"
                              "; parameter names must be unique (ignoring case)")
        params.append(param)
    return tuple(params)


def _parameter(entry: Mapping[str, Any], where: str) -> CommandParameter:
    _only(entry, where, PARAMETER_KEYS)
    name = _string(entry, "name", where, required=True)
    if not PARAMETER_NAME_PATTERN.fullmatch(name):
        raise _FieldError(f"{where}name", f"{name!r} is not allowed; use {PARAMETER_NAME_RULE} "
                          "(it becomes an environment variable and a PowerShell -Name)")
    choices = _strings(entry, "choices", where)
    pattern = _string(entry, "pattern", where)
    if choices and pattern:
        raise _FieldError(f"{where}choices", "give choices or pattern, not both")
    if len(set(choices)) != len(choices) or "" in choices:
        raise _FieldError(f"{where}choices", "must be distinct, non-empty values")
    if pattern:
        try:
            compile_pattern(pattern)
        except PatternError as exc:
            raise _FieldError(f"{where}pattern",
                              f"{pattern!r} is not a valid regular expression ({exc})") from None
    param = CommandParameter(
        name=name,
        description=_string(entry, "description", where),
        default=_string(entry, "default", where),
        required=_bool(entry, "required", where),
        protected=_bool(entry, "protected", where),
        choices=tuple(choices),
        pattern=pattern,
        os=_parameter_os(entry, where),
    )
    if param.protected and param.default:
        # Never echo it: whoever wrote it meant it as a secret.
        raise _FieldError(f"{where}default", "a protected parameter cannot have a default: "
                          "secrets are never kept in files; remove the default")
    if param.default and (why := param.check(param.default)) is not None:
        raise _FieldError(f"{where}default", why)
    return param


def _parameter_os(entry: Mapping[str, Any], where: str) -> OsType | None:
    raw = entry.get("os", "both")
    if not isinstance(raw, str) or raw not in PARAMETER_OS_VALUES:
        raise _FieldError(f"{where}os", f"{raw!r} is not allowed; use "
                          + ", ".join(f'"{v}"' for v in PARAMETER_OS_VALUES)
                          + ' (or leave it out: both)')
    return PARAMETER_OS_VALUES[raw]


def _only(data: Mapping[str, Any], where: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            raise _FieldError(f"{where}{shown_key(key)}",
                              f"unknown field; allowed: {', '.join(allowed)}")


def _string(data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise _FieldError(f"{where}{key}", "missing; it is required")
        return ""
    if not isinstance(value, str):
        hint = f' (quote it: {key} = "{value}")' if isinstance(value, int | float) else ""
        raise _FieldError(f"{where}{key}", f"must be a string{hint}")
    if required and not value.strip():
        raise _FieldError(f"{where}{key}", "is empty; it is required")
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _FieldError(f"{where}{key}", 'must be a list of strings, e.g. ["a", "b"]')
    return value


def _bool(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _FieldError(f"{where}{key}", "must be true or false (unquoted)")
    return value


def read_command(path: Path, *, builtin: bool = False) -> SavedCommand:
    """One saved-command file, checked.

    Raises:
        LibraryError: it cannot be read or used; the message starts with the path.
    """
    try:
        info = path.stat()
        if info.st_size > MAX_FILE_BYTES:
            raise LibraryError(f"{path}: {info.st_size:,} bytes is too big for a saved "
                               f"command (at most {MAX_FILE_BYTES:,})")
        if not builtin:
            check_trusted(path, info)  # what it runs on your fleet is for you to decide
        text = path.read_text(encoding="utf-8")
    except UntrustedFileError as exc:
        raise LibraryError(str(exc)) from None
    except UnicodeDecodeError:
        raise LibraryError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise LibraryError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        data = parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        raise LibraryError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_command(data, path=path, builtin=builtin)
    except LibraryError as exc:
        raise LibraryError(f"{path}: {exc}") from None


def _read_dir(paths: Iterable[Path], builtin: bool,
              problems: list[LibraryProblem]) -> dict[str, SavedCommand]:
    found: dict[str, SavedCommand] = {}
    for path in sorted(paths, key=lambda p: p.name):
        try:
            command = read_command(path, builtin=builtin)
        except LibraryError as exc:
            problems.append(LibraryProblem(path, str(exc)))
            continue
        first = found.get(command.name)
        if first is not None:
            problems.append(LibraryProblem(path, f"{path}: name: {command.name!r} is already "
                                           f"defined in {first.path}; this file is skipped"))
            continue
        found[command.name] = command
    return found


def starter_paths() -> list[Path]:
    """The starter library's files, shipped in the package."""
    root = resources.files(STARTER_PACKAGE)
    return [Path(str(entry)) for entry in root.iterdir()
            if entry.name.endswith(".toml") and entry.is_file()]


def _user_paths(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return [p for p in directory.glob("*.toml") if not p.name.startswith(".") and p.is_file()]


def load_library(user_dir: Path | None = None, *, include_starter: bool = True) -> Library:
    """The starter library and the user's saved commands; a user file wins on a name clash.

    Args:
        user_dir: the user's commands directory; default ``<config dir>/commands``.
        include_starter: load the commands shipped with fleetrun too.

    Returns:
        Every command that loaded, and a problem for each file that did not.
    """
    problems: list[LibraryProblem] = []
    starter = _read_dir(starter_paths(), True, problems) if include_starter else {}
    directory = user_dir if user_dir is not None else default_user_dir()
    user = _read_dir(_user_paths(directory), False, problems)
    return Library(commands={**starter, **user}, problems=problems,
                   overridden=frozenset(starter.keys() & user.keys()))


# -- writing -------------------------------------------------------------------------------


def command_document(command: SavedCommand) -> dict[str, Any]:
    """The file's content as a dict (protected defaults left out), as tomli-w writes it.

    Fields holding their default are left out, so a file says only what matters.
    """
    doc: dict[str, Any] = {"name": command.name}
    if command.description:
        doc["description"] = command.description
    if command.tags:
        doc["tags"] = list(command.tags)
    if command.timeout is not None:
        doc["timeout"] = command.timeout
    doc["dangerous"] = command.dangerous
    if command.parameters:
        doc["parameters"] = [_parameter_document(p) for p in command.parameters]
    doc["scripts"] = {SCRIPT_KEY_FOR[c]: command.scripts[c]
                      for c in (CommandId.SHELL, CommandId.POWERSHELL) if c in command.scripts}
    return doc


def _parameter_document(param: CommandParameter) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": param.name}
    if param.description:
        doc["description"] = param.description
    if param.default and not param.protected:
        doc["default"] = param.default
    if param.required:
        doc["required"] = True
    if param.protected:
        doc["protected"] = True
    if param.choices:
        doc["choices"] = list(param.choices)
    if param.pattern:
        doc["pattern"] = param.pattern
    if param.os is not None:
        doc["os"] = str(param.os)
    return doc


def save_command(command: SavedCommand, directory: Path | None = None, *,
                 replace: bool = False) -> Path:
    """Write ``command`` as ``<directory>/<name>.toml`` (or back to its own file there).

    The file is owner-only (0600) in an owner-only directory, written whole or not at all.
    A protected parameter's default is never written.

    Args:
        command: what to save; checked as a file read back would be.
        directory: default ``<config dir>/commands``.
        replace: overwrite the file even when it holds a different command (or none).

    Returns:
        The file written.

    Raises:
        LibraryError: the command is not valid, the file holds another command and
            ``replace`` is false, or the file cannot be written.
    """
    doc = command_document(command)
    parse_command(doc)  # the same checks a load does: never write what cannot be read back
    directory = directory if directory is not None else default_user_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise LibraryError(f"{directory}: cannot create it: {exc.strerror}") from None
    own = command.path is not None and command.path.parent.resolve() == directory.resolve()
    target = command.path if own and command.path is not None else directory / (
        command.name + ".toml")
    if target.exists() and not replace:
        _refuse_foreign(target, command.name)
    text = HEADER + tomli_w.dumps(doc, multiline_strings=True)
    try:
        replace_file(target, text, sync=True)
    except OSError as exc:
        raise LibraryError(f"{target}: cannot write it: {exc.strerror}") from None
    return target


def _refuse_foreign(target: Path, name: str) -> None:
    try:
        existing = read_command(target).name
    except LibraryError:
        existing = None
    if existing != name:
        holds = f"command {existing!r}" if existing else "something that is not a saved command"
        raise LibraryError(f"{target} already holds {holds}; not overwritten (choose another "
                           "name, or replace it explicitly)")


def saved_command_from(
    command: Command | Mapping[CommandId, Command],
    name: str,
    description: str = "",
    tags: Iterable[str] = (),
    *,
    dangerous: bool = False,
    parameter_os: Mapping[str, OsType] | None = None,
) -> SavedCommand:
    """A saved command from what the composer holds (one command, or one per OS).

    Named parameters become the table with their values as defaults, except protected ones:
    their name and protected flag are kept, their value is dropped. A parameter in several
    scripts keeps the first value (shell before PowerShell). The run-as user and password
    are not part of a saved command. ``parameter_os`` marks parameters (by name) for one
    OS only, as the composer's OS buttons do; the others go to both.

    Raises:
        LibraryError: the name is not allowed, or a parameter has no name (a saved command's
            parameters are named: they fill the table).
    """
    commands = {command.command_id: command} if isinstance(command, Command) else dict(command)
    if not commands:
        raise LibraryError("nothing to save: no script")
    ordered = [commands[c] for c in (CommandId.SHELL, CommandId.POWERSHELL) if c in commands]
    marks = parameter_os or {}
    params: dict[str, CommandParameter] = {}
    for cmd in ordered:
        for index, param in enumerate(cmd.parameters):
            if not param.named:
                raise LibraryError(
                    f"parameter {index + 1} of the {SCRIPT_KEY_FOR[cmd.command_id]} script has "
                    "no name; a saved command takes named parameters only: name it")
            key = param.name.lower()
            first = params.get(key)
            if first is None:
                params[key] = CommandParameter(
                    name=param.name, default="" if param.protected else param.value,
                    protected=param.protected, os=marks.get(param.name))
            elif param.protected and not first.protected:
                params[key] = CommandParameter(name=first.name, protected=True, os=first.os)
    saved = SavedCommand(
        name=name,
        description=description,
        tags=tuple(dict.fromkeys(tags)),
        scripts={c.command_id: c.script for c in ordered},
        parameters=tuple(params.values()),
        timeout=ordered[0].timeout,
        dangerous=dangerous,
    )
    parse_command(command_document(saved))  # name, tags, script and timeout rules
    return saved
