"""A saved command becomes a runnable Command: defaults, checks, protected values."""

from __future__ import annotations

import pytest

from core.library import CommandParameter, LibraryError, ParameterError, SavedCommand
from core.model import CommandId, OsType, Parameter

SECRET = "hunter2-canary"

CHECK = SavedCommand(
    name="check",
    scripts={CommandId.SHELL: "echo $server", CommandId.POWERSHELL: "param($server)"},
    parameters=(
        CommandParameter("server", required=True, pattern=r"[a-z0-9.]+"),
        CommandParameter("port", default="443", pattern=r"[0-9]{1,5}"),
        CommandParameter("mode", choices=("fast", "slow")),
        CommandParameter("token", protected=True, pattern=r"[a-z0-9-]+"),
    ),
    timeout=45,
)


def test_defaults_fill_what_is_not_given_and_empty_values_are_left_out() -> None:
    command = CHECK.command_for(CommandId.SHELL, {"server": "db01"})
    assert command.command_id is CommandId.SHELL
    assert command.script == "echo $server"
    assert command.parameters == (Parameter("server", "db01"), Parameter("port", "443"))
    assert command.timeout == 45


def test_values_are_checked_and_each_problem_names_its_parameter() -> None:
    with pytest.raises(ParameterError) as caught:
        CHECK.command_for(CommandId.SHELL, {"port": "https", "mode": "turbo", "prot": "x"})
    problems = {p.parameter: p.message for p in caught.value.problems}
    assert problems["prot"].startswith("is not a parameter of this command; it takes server")
    assert problems["server"] == "is required; give a value"
    assert problems["port"] == "'https' is not allowed; use a value matching [0-9]{1,5}"
    assert problems["mode"] == "'turbo' is not allowed; use one of fast, slow"
    assert "parameter 'mode'" in str(caught.value)


def test_a_protected_value_is_sent_protected_and_never_quoted() -> None:
    command = CHECK.command_for(CommandId.POWERSHELL, {"server": "db01", "token": "ok-token"})
    assert Parameter("token", "ok-token", protected=True) in command.parameters
    with pytest.raises(ParameterError) as caught:
        CHECK.command_for(CommandId.SHELL, {"server": "db01", "token": SECRET + "!"})
    assert SECRET not in str(caught.value)
    assert "the value is not allowed" in str(caught.value)


def test_a_missing_script_names_the_os() -> None:
    linux_only = SavedCommand("l", scripts={CommandId.SHELL: "true"})
    assert linux_only.os_types() == (OsType.LINUX,)
    assert CHECK.os_types() == (OsType.LINUX, OsType.WINDOWS)
    with pytest.raises(LibraryError, match="no powershell script for windows machines"):
        linux_only.command_for(CommandId.POWERSHELL, {})


def test_no_timeout_leaves_the_run_default() -> None:
    command = SavedCommand("t", scripts={CommandId.SHELL: "true"}).command_for(
        CommandId.SHELL, {})
    assert command.timeout == 3600 and command.parameters == ()
