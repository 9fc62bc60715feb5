"""Saved-command files: loading with problems named, saving, the round trip, secrets."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from core.library import (
    CommandParameter,
    LibraryError,
    SavedCommand,
    load_library,
    read_command,
    save_command,
    saved_command_from,
)
from core.model import Command, CommandId, Parameter

CANARY = "canary-7f3a-do-not-store"

GOOD = """
name = "good"
description = "a good one"
tags = ["disk"]
timeout = 30

[[parameters]]
name = "path"
default = "/var"

[scripts]
shell = 'du -sh "$path"'
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problem_for(directory: Path, name: str, text: str) -> str:
    """Load a directory holding GOOD and one more file; that file's problem message."""
    write(directory, "good.toml", GOOD)
    path = write(directory, name, text)
    library = load_library(directory, include_starter=False)
    assert list(library.commands) == ["good"], "the good file loads whatever the other holds"
    (problem,) = library.problems
    assert problem.path == path
    assert str(path) in problem.message
    return problem.message


def test_a_malformed_toml_among_good_ones_is_reported_and_the_rest_load(tmp_path: Path) -> None:
    message = problem_for(tmp_path, "broken.toml", 'name = "broken"\ndescription = "no end\n')
    assert "not valid TOML" in message


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ('description = "x"\n[scripts]\nshell = "true"\n', "name", "missing"),
        ('name = "t"\ntimeout = "60"\n[scripts]\nshell = "true"\n', "timeout", "whole seconds"),
        ('name = "t"\ndescripton = "typo"\n[scripts]\nshell = "true"\n', "descripton",
         "unknown field"),
        ('name = "t"\n[scripts]\nbash = "true"\n', "scripts.bash", "allowed: shell, powershell"),
        ('name = "t"\ndangerous = "yes"\n[scripts]\nshell = "true"\n', "dangerous",
         "true or false"),
        ('name = "t"\n', "scripts", "missing"),
        ('name = "has space"\n[scripts]\nshell = "true"\n', "name", "is not allowed"),
        ('name = "t"\n[[parameters]]\nname = "a"\n[[parameters]]\nname = "A"\n'
         '[scripts]\nshell = "true"\n', "parameters[1].name", "already parameters[0]"),
        ('name = "t"\n[[parameters]]\nname = "port"\ndefault = 443\n[scripts]\nshell = "true"\n',
         "parameters[0].default", 'quote it: default = "443"'),
        ('name = "t"\n[[parameters]]\nname = "p"\npattern = "([a-z"\n[scripts]\nshell = "true"\n',
         "parameters[0].pattern", "not a valid regular expression"),
        ('name = "t"\n[[parameters]]\nname = "p"\nchoices = ["a"]\npattern = "a"\n'
         '[scripts]\nshell = "true"\n', "parameters[0].choices", "not both"),
        ('name = "t"\n[[parameters]]\nname = "p"\nchoices = ["a", "b"]\ndefault = "c"\n'
         '[scripts]\nshell = "true"\n', "parameters[0].default", "use one of a, b"),
        ('name = "t"\n[[parameters]]\nname = "1p"\n[scripts]\nshell = "true"\n',
         "parameters[0].name", "not starting with a digit"),
        ('name = "t"\n[[parameters]]\nname = "host"\n[scripts]\npowershell = "param($host)"\n',
         "parameters[0].name", "automatic variable"),
        ('name = "t"\n[[parameters]]\nname = "PATH"\n[scripts]\nshell = "true"\n',
         "parameters[0].name", "shell's own $PATH"),
        ('name = "t"\n[[parameters]]\nname = "p"\nsecret = true\n[scripts]\nshell = "true"\n',
         "parameters[0].secret", "allowed: name, description, default"),
        ('name = "t"\n[scripts]\nshell = "  \\n"\n', "scripts.shell", "is empty"),
    ],
)
def test_an_invalid_file_names_its_field(tmp_path: Path, text: str, field: str, says: str
                                         ) -> None:
    message = problem_for(tmp_path, "bad.toml", text)
    assert f": {field}: " in message
    assert says in message


def test_a_protected_default_written_by_hand_is_refused_without_echoing_it(
        tmp_path: Path) -> None:
    text = (f'name = "t"\n[[parameters]]\nname = "token"\nprotected = true\n'
            f'default = "{CANARY}"\n[scripts]\nshell = "true"\n')
    message = problem_for(tmp_path, "secret.toml", text)
    assert "parameters[0].default" in message and "protected" in message
    assert CANARY not in message


def test_a_parameter_name_reserved_by_one_os_is_fine_without_that_script(
        tmp_path: Path) -> None:
    write(tmp_path, "h.toml", 'name = "h"\n[[parameters]]\nname = "host"\n'
                              '[scripts]\nshell = "echo $host"\n')
    library = load_library(tmp_path, include_starter=False)
    assert library.problems == []
    assert library.commands["h"].parameters[0].name == "host"


def test_a_duplicate_name_in_two_user_files_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", GOOD)
    second = write(tmp_path, "b.toml", GOOD)
    library = load_library(tmp_path, include_starter=False)
    assert library.commands["good"].path == tmp_path / "a.toml"
    (problem,) = library.problems
    assert problem.path == second and "already defined in" in problem.message


@pytest.mark.parametrize(("bits", "who"), [(0o666, "group and other"), (0o664, "group"),
                                           (0o602, "other")])
def test_a_file_others_may_write_is_not_trusted(tmp_path: Path, bits: int, who: str) -> None:
    path = write(tmp_path, "good.toml", GOOD)
    path.chmod(bits)
    library = load_library(tmp_path, include_starter=False)
    assert library.commands == {}
    (problem,) = library.problems
    assert problem.message == (f"{path}: writable by {who} (mode {bits:04o}); fleetrun uses "
                               f"only files that are yours and private: chmod go-w {path}")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_file_owned_by_another_user_is_not_trusted(tmp_path: Path) -> None:
    path = write(tmp_path, "good.toml", GOOD)
    os.chown(path, 4321, -1)
    library = load_library(tmp_path, include_starter=False)
    assert library.commands == {}
    assert library.problems[0].message.startswith(f"{path}: owned by uid 4321, not by you")


def test_a_user_file_overrides_the_starter_command_of_the_same_name(tmp_path: Path) -> None:
    write(tmp_path, "mine.toml", 'name = "tcp-check"\ndescription = "mine"\n'
                                 '[scripts]\nshell = "echo mine"\n')
    library = load_library(tmp_path)
    mine = library.commands["tcp-check"]
    assert mine.description == "mine" and not mine.builtin
    assert mine.path == tmp_path / "mine.toml"
    assert "tcp-check" in library.overridden


def test_a_missing_user_directory_is_no_problem(tmp_path: Path) -> None:
    library = load_library(tmp_path / "nothing-here")
    assert library.problems == []
    assert all(c.builtin for c in library.commands.values())


def test_get_suggests_close_names(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", GOOD)
    library = load_library(tmp_path, include_starter=False)
    assert library.get("GOOD").name == "good"
    with pytest.raises(LibraryError, match="did you mean good"):
        library.get("goo")


FULL = SavedCommand(
    name="full.example",
    description='quotes " and \' and a backslash \\ and ünïcode',
    tags=("network", "probe"),
    scripts={
        CommandId.SHELL: "printf '%s\\n' \"$server\" | awk '{ print $1 }'\n"
                         "echo ''' triple \"\"\" quotes\n",
        CommandId.POWERSHELL: "param([string]$server, [string]$token)\n"
                              "Write-Output \"C:\\Temp\\$server\"\n",
    },
    parameters=(
        CommandParameter("server", "where to", required=True, pattern=r"^[a-z0-9.]+$"),
        CommandParameter("mode", default="fast", choices=("fast", "slow")),
        CommandParameter("token", "a secret", protected=True),
    ),
    timeout=0,
    dangerous=True,
)


def test_save_then_load_gives_the_command_back(tmp_path: Path) -> None:
    path = save_command(FULL, tmp_path)
    assert path == tmp_path / "full.example.toml"
    assert read_command(path) == replace(FULL, path=path)
    assert load_library(tmp_path, include_starter=False).commands["full.example"] == replace(
        FULL, path=path)


def test_saved_files_are_owner_only(tmp_path: Path) -> None:
    directory = tmp_path / "commands"
    path = save_command(FULL, directory)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert [p.name for p in directory.iterdir()] == [path.name], "no temporary file left"


def test_a_protected_value_is_never_written(tmp_path: Path) -> None:
    with_secret = replace(FULL, parameters=(
        *FULL.parameters[:2], CommandParameter("token", protected=True, default=CANARY)))
    path = save_command(with_secret, tmp_path)
    text = path.read_text()
    assert CANARY not in text
    assert 'name = "token"' in text and "protected = true" in text
    assert read_command(path).parameters[2] == CommandParameter("token", protected=True)


def test_from_the_composer_keeps_names_and_drops_protected_values(tmp_path: Path) -> None:
    shell = Command(CommandId.SHELL, 'echo "$server"', timeout=120, parameters=(
        Parameter("server", "db01"), Parameter("token", CANARY, protected=True)))
    pwsh = Command(CommandId.POWERSHELL, "param($server, $token, $extra)", parameters=(
        Parameter("server", "ignored-second"), Parameter("token", CANARY, protected=True),
        Parameter("extra", "x")))
    saved = saved_command_from({CommandId.SHELL: shell, CommandId.POWERSHELL: pwsh},
                               "from-composer", "made in the app", ["adhoc"])
    assert saved.parameters == (
        CommandParameter("server", default="db01"),
        CommandParameter("token", protected=True),
        CommandParameter("extra", default="x"),
    )
    assert saved.scripts == {CommandId.SHELL: shell.script, CommandId.POWERSHELL: pwsh.script}
    assert saved.timeout == 120 and saved.tags == ("adhoc",)
    assert CANARY not in repr(saved)
    path = save_command(saved, tmp_path)
    assert CANARY not in path.read_text()
    assert read_command(path) == replace(saved, path=path)


def test_from_the_composer_refuses_an_unnamed_parameter() -> None:
    command = Command(CommandId.SHELL, "echo $1", parameters=(Parameter("", "x"),))
    with pytest.raises(LibraryError, match="parameter 1 of the shell script has no name"):
        saved_command_from(command, "positional")


def test_from_the_composer_refuses_a_bad_name() -> None:
    with pytest.raises(LibraryError, match="name: 'Check disk' is not allowed"):
        saved_command_from(Command(CommandId.SHELL, "df -h"), "Check disk")


def test_save_refuses_to_overwrite_another_commands_file(tmp_path: Path) -> None:
    write(tmp_path, "x.toml", GOOD)  # holds "good"
    command = SavedCommand("x", scripts={CommandId.SHELL: "true"})
    with pytest.raises(LibraryError, match="already holds command 'good'"):
        save_command(command, tmp_path)
    assert read_command(tmp_path / "x.toml").name == "good"
    save_command(command, tmp_path, replace=True)
    assert read_command(tmp_path / "x.toml").name == "x"


def test_save_overwrites_the_same_commands_file(tmp_path: Path) -> None:
    first = save_command(FULL, tmp_path)
    changed = replace(FULL, description="changed")
    assert save_command(changed, tmp_path) == first
    assert read_command(first).description == "changed"


def test_save_writes_back_to_the_file_it_was_loaded_from(tmp_path: Path) -> None:
    path = write(tmp_path, "hand-named.toml", GOOD)
    loaded = read_command(path)
    assert save_command(replace(loaded, description="edited"), tmp_path) == path
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hand-named.toml"]


def test_save_refuses_what_a_load_would_refuse(tmp_path: Path) -> None:
    bad = SavedCommand("t", scripts={CommandId.SHELL: "true"},
                       parameters=(CommandParameter("p", default="z", choices=("a",)),))
    with pytest.raises(LibraryError, match=r"parameters\[0\].default"):
        save_command(bad, tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_directory_that_cannot_be_made_is_a_library_error(tmp_path: Path) -> None:
    blocker = write(tmp_path, "commands", "a file where the directory should be")
    with pytest.raises(LibraryError, match="cannot create it"):
        save_command(FULL, blocker)
