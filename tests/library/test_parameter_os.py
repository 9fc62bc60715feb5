"""A parameter marked for one OS: kept in the saved command's file, read back, and sent only
to that OS's machines; files without the mark load as before (both OS)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from core.library import (
    CommandParameter,
    SavedCommand,
    load_library,
    read_command,
    save_command,
    saved_command_from,
)
from core.model import Command, CommandId, OsType, Parameter
from tests.library.test_library_files import GOOD, write

BOTH_SCRIPTS = {CommandId.SHELL: 'echo "$UNIT"', CommandId.POWERSHELL: "param($Service) $Service"}

MARKED = """
name = "restart"

[[parameters]]
name = "UNIT"
default = "nginx"
os = "linux"

[[parameters]]
name = "Service"
default = "W3SVC"
os = "windows"

[[parameters]]
name = "reason"
default = "incident"

[scripts]
shell = 'echo "$UNIT $reason"'
powershell = 'param($Service, $reason) "$Service $reason"'
"""


def test_the_mark_is_read_and_each_os_gets_only_its_parameters(tmp_path: Path) -> None:
    saved = read_command(write(tmp_path, "restart.toml", MARKED))
    assert [(p.name, p.os) for p in saved.parameters] == [
        ("UNIT", OsType.LINUX), ("Service", OsType.WINDOWS), ("reason", None)]
    linux = saved.command_for(CommandId.SHELL, {})
    windows = saved.command_for(CommandId.POWERSHELL, {})
    assert [p.name for p in linux.parameters] == ["UNIT", "reason"]
    assert [p.name for p in windows.parameters] == ["Service", "reason"]


def test_the_mark_is_written_only_when_it_is_one_os(tmp_path: Path) -> None:
    saved = SavedCommand("restart", scripts=BOTH_SCRIPTS, parameters=(
        CommandParameter("UNIT", default="nginx", os=OsType.LINUX),
        CommandParameter("Service", default="W3SVC")))
    path = save_command(saved, tmp_path)
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    assert doc["parameters"] == [{"name": "UNIT", "default": "nginx", "os": "linux"},
                                 {"name": "Service", "default": "W3SVC"}]
    again = read_command(path)
    assert [p.os for p in again.parameters] == [OsType.LINUX, None]


def test_a_file_without_the_key_loads_for_both_and_keeps_its_hash(tmp_path: Path) -> None:
    old = read_command(write(tmp_path, "good.toml", GOOD))
    assert [p.os for p in old.parameters] == [None]
    # The hash history recorded before marks existed (computed by the code before them).
    assert old.content_hash() == "sha256:e18fa22a57bf"
    marked = SavedCommand(old.name, scripts=old.scripts, timeout=old.timeout, parameters=(
        CommandParameter("path", default="/var", os=OsType.LINUX),))
    assert marked.content_hash() != old.content_hash(), "a mark changes what runs"


def test_a_bad_mark_names_the_file_the_field_and_the_values_and_the_rest_load(
        tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD)
    bad = write(tmp_path, "bad.toml", MARKED.replace('os = "windows"', 'os = "macos"'))
    write(tmp_path, "restart-2.toml", MARKED.replace('"restart"', '"restart-2"'))
    library = load_library(tmp_path, include_starter=False)
    assert sorted(library.commands) == ["good", "restart-2"]
    (problem,) = library.problems
    assert problem.message == (f"{bad}: parameters[1].os: 'macos' is not allowed; use "
                               '"linux", "windows", "both" (or leave it out: both)')


def test_a_mark_that_is_not_a_string_is_refused_too(tmp_path: Path) -> None:
    write(tmp_path, "bad.toml", MARKED.replace('os = "linux"', "os = 1"))
    (problem,) = load_library(tmp_path, include_starter=False).problems
    assert "parameters[0].os: 1 is not allowed" in problem.message


def test_from_the_composer_the_marks_are_kept_by_name() -> None:
    shell = Command(CommandId.SHELL, BOTH_SCRIPTS[CommandId.SHELL],
                    (Parameter("UNIT", "nginx"), Parameter("Service", "W3SVC")))
    pwsh = Command(CommandId.POWERSHELL, BOTH_SCRIPTS[CommandId.POWERSHELL], shell.parameters)
    saved = saved_command_from({CommandId.SHELL: shell, CommandId.POWERSHELL: pwsh}, "restart",
                               parameter_os={"UNIT": OsType.LINUX})
    assert [(p.name, p.os) for p in saved.parameters] == [("UNIT", OsType.LINUX),
                                                          ("Service", None)]
