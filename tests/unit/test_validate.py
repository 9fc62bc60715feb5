"""The service's rules as code: one test per rule, its error and its valid case."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from core.model import (
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineKind,
    OsType,
    Parameter,
)
from core.validate import (
    MAX_SCRIPT_BYTES,
    MAX_TIMEOUT,
    Limit,
    Problem,
    ValidationError,
    parse_limit,
    raise_if_errors,
    split_runnable,
    validate_command,
    validate_selection,
)

SH = CommandId.SHELL
PS = CommandId.POWERSHELL


def cmd(command_id: CommandId = SH, script: str = "echo ok", **kwargs: Any) -> Command:
    return Command(command_id, script, **kwargs)


def p(name: str, value: str = "v", *, protected: bool = False) -> Parameter:
    return Parameter(name, value, protected)


def linux(name: str, status: HealthStatus = HealthStatus.READY) -> Machine:
    return Machine(f"id-{name}", name, MachineKind.VM, OsType.LINUX, health=Health(status))


def windows(name: str, status: HealthStatus = HealthStatus.READY) -> Machine:
    return Machine(f"id-{name}", name, MachineKind.ARC, OsType.WINDOWS, health=Health(status))


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def errors(problems: list[Problem]) -> list[Problem]:
    return [x for x in problems if x.severity == "error"]


# -- Problem and ValidationError ----------------------------------------------------------


def test_problem_is_frozen_and_defaults_to_error() -> None:
    problem = Problem("script", "the script is empty")
    assert problem.severity == "error" and problem.is_error
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.field = "x"  # type: ignore[misc]


def test_validation_error_lists_field_and_message_per_line() -> None:
    exc = ValidationError(
        [Problem("timeout", "too long"), Problem("parameters[0].value", "empty", "warning")]
    )
    assert isinstance(exc, ValueError)
    assert str(exc) == "timeout: too long\nparameters[0].value: warning: empty"
    assert [x.field for x in exc.problems] == ["timeout", "parameters[0].value"]


def test_raise_if_errors_only_raises_for_errors_and_keeps_warnings() -> None:
    warning = Problem("parameters[0].value", "empty", "warning")
    raise_if_errors([])
    raise_if_errors([warning])
    error = Problem("script", "empty")
    with pytest.raises(ValidationError) as info:
        raise_if_errors([warning, error])
    assert info.value.problems == [warning, error]


# -- script -------------------------------------------------------------------------------


def test_valid_command_has_no_problems() -> None:
    assert validate_command(cmd()) == []
    assert validate_command(cmd(PS, "Get-Date", parameters=(p("Name"),))) == []


@pytest.mark.parametrize("script", ["", "   ", "\n\t \n"])
def test_script_must_not_be_empty_or_whitespace(script: str) -> None:
    problem = only(validate_command(cmd(script=script)))
    assert problem.field == "script" and problem.is_error
    assert "empty" in problem.message and "at least one command" in problem.message


def test_script_at_the_size_limit_passes() -> None:
    assert validate_command(cmd(script="#" * MAX_SCRIPT_BYTES)) == []
    assert MAX_SCRIPT_BYTES == 262_144


def test_script_over_the_size_limit_says_its_size_and_the_limit() -> None:
    problem = only(validate_command(cmd(script="#" * (MAX_SCRIPT_BYTES + 1))))
    assert problem.field == "script"
    assert "262,145 bytes" in problem.message and "262,144 bytes (256 KiB)" in problem.message


def test_script_size_counts_utf8_bytes_not_characters() -> None:
    # 'é' is 2 bytes: fewer characters than the limit, more bytes.
    script = "é" * (MAX_SCRIPT_BYTES // 2 + 1)
    assert len(script) < MAX_SCRIPT_BYTES
    assert only(validate_command(cmd(script=script))).field == "script"


# -- timeout ------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [0, 1, 3600, MAX_TIMEOUT])
def test_timeout_in_range_passes(timeout: int) -> None:
    assert validate_command(cmd(timeout=timeout)) == []


@pytest.mark.parametrize("timeout", [-1, MAX_TIMEOUT + 1, 10**9])
def test_timeout_out_of_range_says_the_range_and_what_zero_means(timeout: int) -> None:
    problem = only(validate_command(cmd(timeout=timeout)))
    assert problem.field == "timeout"
    assert "0 to 604,800" in problem.message and "0 means no limit" in problem.message


@pytest.mark.parametrize("timeout", [1.5, "60", True, None])
def test_timeout_must_be_a_whole_number(timeout: object) -> None:
    problem = only(validate_command(cmd(timeout=timeout)))
    assert problem.field == "timeout" and "whole number of seconds" in problem.message


# -- parameter names ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["A", "_x", "HOST_NAME", "n0", "_"])
def test_valid_parameter_names_pass(name: str) -> None:
    assert validate_command(cmd(parameters=(p(name),))) == []
    assert validate_command(cmd(PS, parameters=(p(name),))) == []


@pytest.mark.parametrize("name", ["1BAD", "my-var", "a b", "é", "x.y", "a=b", "x\x00"])
def test_invalid_parameter_names_are_errors_naming_the_rule(name: str) -> None:
    problem = only(validate_command(cmd(parameters=(p("ok"), p(name)))))
    assert problem.field == "parameters[1].name" and problem.is_error
    assert repr(name) in problem.message
    assert "letters, digits and _" in problem.message
    assert "environment variable" in problem.message


def test_duplicate_names_are_errors_across_public_and_protected() -> None:
    params = (p("TOKEN"), p("OTHER"), p("TOKEN", "s", protected=True))
    problem = only(validate_command(cmd(parameters=params)))
    assert problem.field == "parameters[2].name"
    assert "parameters[0]" in problem.message and "unique" in problem.message


def test_linux_names_are_case_sensitive() -> None:
    assert validate_command(cmd(parameters=(p("path"), p("PATH")))) == []


def test_powershell_names_are_unique_case_insensitively() -> None:
    problem = only(validate_command(cmd(PS, parameters=(p("Path"), p("PATH")))))
    assert problem.field == "parameters[1].name"
    assert "case-insensitively" in problem.message and "'Path'" in problem.message


def test_unnamed_parameters_are_positional_on_linux() -> None:
    assert validate_command(cmd(parameters=(p("", "a"), p("", "b"), p("N", "1")))) == []


def test_unnamed_parameters_are_an_error_for_powershell() -> None:
    problem = only(validate_command(cmd(PS, parameters=(p("A"), p("", "x")))))
    assert problem.field == "parameters[1].name" and problem.is_error
    assert "-Name value" in problem.message


# -- parameter values ---------------------------------------------------------------------


def test_empty_named_value_is_a_warning_that_the_variable_will_be_unset() -> None:
    problem = only(validate_command(cmd(parameters=(p("EMPTY", ""),))))
    assert problem.field == "parameters[0].value" and problem.severity == "warning"
    assert problem.message.startswith(
        "the Linux handler drops parameters with empty values: $EMPTY will be unset"
    )


def test_empty_positional_value_warns_that_later_arguments_shift() -> None:
    problem = only(validate_command(cmd(parameters=(p("", "a"), p("", ""), p("", "c")))))
    assert problem.field == "parameters[1].value" and problem.severity == "warning"
    assert "$2" in problem.message and "$3 becomes $2" in problem.message


def test_empty_last_positional_value_warns_that_it_will_be_unset() -> None:
    problem = only(validate_command(cmd(parameters=(p("", "a"), p("", "")))))
    assert "$2 will be unset" in problem.message


def test_positions_follow_the_handler_order_public_then_protected() -> None:
    # Given order: protected first; the handler sends public first, so the secret is $2.
    params = (p("", "", protected=True), p("", "a"))
    problem = only(validate_command(cmd(parameters=params)))
    assert problem.field == "parameters[0].value" and "($2)" in problem.message


def test_empty_powershell_value_is_a_warning() -> None:
    problem = only(validate_command(cmd(PS, parameters=(p("Name", ""),))))
    assert problem.severity == "warning" and "-Name" in problem.message


def test_nul_byte_in_a_value_is_an_error() -> None:
    problem = only(validate_command(cmd(parameters=(p("A", "x\x00y"),))))
    assert problem.field == "parameters[0].value" and problem.is_error
    assert "NUL" in problem.message


def test_unnamed_value_with_shell_characters_warns_about_word_splitting() -> None:
    problem = only(validate_command(cmd(parameters=(p("", "two words"),))))
    assert problem.severity == "warning" and "unquoted" in problem.message
    assert validate_command(cmd(parameters=(p("", "a-b_c/d.e=f:1,2@x"),))) == []
    # named values are environment variables: no shell involved.
    assert validate_command(cmd(parameters=(p("A", "two words; $(x)"),))) == []


# -- run as -------------------------------------------------------------------------------


def test_run_as_password_without_user_is_an_error() -> None:
    problem = only(validate_command(cmd(run_as_password="pw")))
    assert problem.field == "run_as_password" and problem.is_error
    assert "run_as_user" in problem.message


def test_run_as_user_with_password_passes() -> None:
    assert validate_command(cmd(run_as_user="deploy", run_as_password="pw")) == []


@pytest.mark.parametrize("user", ["deploy", "_svc", "a.b-c@corp", "x" * 64])
def test_valid_linux_user_names_pass(user: str) -> None:
    assert validate_command(cmd(run_as_user=user)) == []


@pytest.mark.parametrize(
    "user", ["1root", "a b", "root;rm", "x" * 65, "-u", "CORP\\ops", "$(id)", "é"]
)
def test_invalid_linux_user_names_are_errors(user: str) -> None:
    problem = only(validate_command(cmd(run_as_user=user)))
    assert problem.field == "run_as_user" and problem.is_error
    assert "not a valid user name" in problem.message and "letter or _" in problem.message


@pytest.mark.parametrize("user", ["Administrator", "CORP\\ops", ".\\admin", "ops@corp.com"])
def test_windows_user_names_allow_a_domain(user: str) -> None:
    assert validate_command(cmd(PS, run_as_user=user)) == []


@pytest.mark.parametrize("user", ["CORP\\", "\\ops", "a\\b\\c", "ops user"])
def test_invalid_windows_user_names_are_errors(user: str) -> None:
    problem = only(validate_command(cmd(PS, run_as_user=user)))
    assert problem.field == "run_as_user" and "DOMAIN\\USER" in problem.message


def test_run_as_with_named_parameters_on_azure_warns_about_sudo() -> None:
    command = cmd(run_as_user="deploy", parameters=(p("A"), p("T", protected=True)))
    problem = only(validate_command(command, azure_targets=True))
    assert problem.field == "run_as_user" and problem.severity == "warning"
    assert "sudo" in problem.message and "Azure" in problem.message
    # Moving a protected value to an unnamed one would put it on sudo's command line.
    assert "keep protected values named" in problem.message


@pytest.mark.parametrize("kind", [MachineKind.LOCAL, MachineKind.SSH])
def test_run_as_with_named_parameters_off_azure_is_not_a_sudo_warning(kind: MachineKind) -> None:
    # fleetrun switches user itself on this machine (no sudo): named parameters arrive.
    command = cmd(run_as_user="nobody", parameters=(p("A"),))
    machine = Machine("m", "m", kind, OsType.LINUX)
    assert validate_command(command, azure_targets=False) == []
    assert validate_selection([(machine, command)]) == []


# -- secrets ------------------------------------------------------------------------------


def test_no_problem_ever_contains_a_protected_value_or_the_password() -> None:
    canary = "CANARY-s3cr3t-4f9a"
    params = (
        p("", "", protected=True),  # empty positional
        p("", f"{canary} x;y", protected=True),  # shell characters
        p("", f"{canary}\x00", protected=True),  # NUL
        p("GOOD", canary, protected=True),
        p("GOOD", canary, protected=True),  # duplicate
        p("1BAD", canary, protected=True),  # bad name
        p("E", "", protected=True),  # empty named
    )
    commands = [
        cmd(SH, "", parameters=params, timeout=-1, run_as_user="bad user", run_as_password=canary),
        cmd(SH, "x", parameters=params, run_as_password=canary + "\x00"),
        cmd(PS, "", parameters=params, run_as_user="bad user", run_as_password=canary),
        cmd(SH, "x", parameters=params, run_as_user="deploy", run_as_password=canary),
    ]
    seen: list[Problem] = []
    for command in commands:
        seen += validate_command(command)
    seen += validate_selection([(windows("w1"), commands[0]), (linux("l1"), commands[2])])
    assert len({x.field for x in seen}) >= 8  # the canary went through most rules
    for problem in seen:
        assert canary not in problem.message and canary not in problem.field
        assert canary not in str(problem) and canary not in repr(problem)
    assert canary not in str(ValidationError(seen))


# -- selection ----------------------------------------------------------------------------


def test_empty_selection_is_an_error() -> None:
    problem = only(validate_selection([]))
    assert problem.field == "selection" and "no machines selected" in problem.message


def test_matching_selection_has_no_problems() -> None:
    shell, ps = cmd(), cmd(PS, "Get-Date")
    assert validate_selection([(linux("a"), shell), (windows("b"), ps)]) == []


def test_shell_script_on_windows_is_an_error_naming_the_machines() -> None:
    shell = cmd()
    pairs = [(linux("ok"), shell), (windows("w1"), shell), (windows("w2"), shell)]
    problem = only(validate_selection(pairs))
    assert problem.field == "selection" and problem.is_error
    assert "RunShellScript runs only on linux" in problem.message
    assert "2 windows machines" in problem.message and "w1, w2" in problem.message
    assert "ok" not in problem.message.split(":", 1)[1].split(";")[0]
    assert "RunPowerShellScript" in problem.message and "!os:windows" in problem.message


def test_powershell_on_linux_is_an_error() -> None:
    problem = only(validate_selection([(linux("l1"), cmd(PS, "Get-Date"))]))
    assert "RunPowerShellScript runs only on windows" in problem.message
    assert "1 linux machine would" in problem.message and "l1" in problem.message


def test_os_mismatch_names_at_most_five_machines_and_the_count() -> None:
    shell = cmd()
    pairs = [(windows(f"w{i}"), shell) for i in range(12)]
    problem = only(validate_selection(pairs))
    assert "12 windows machines" in problem.message
    assert "w0, w1, w2, w3, w4 and 7 more" in problem.message
    assert "w5" not in problem.message


def test_command_problems_are_reported_once_for_a_shared_command() -> None:
    shared = cmd(script="", parameters=(p("E", ""),))
    problems = validate_selection([(linux(f"m{i}"), shared) for i in range(50)])
    assert [(x.field, x.severity) for x in problems] == [
        ("script", "error"),
        ("parameters[0].value", "warning"),
    ]


def test_equal_commands_in_separate_objects_are_reported_once() -> None:
    problems = validate_selection([(linux("a"), cmd(script="")), (linux("b"), cmd(script=""))])
    assert len(problems) == 1


def test_problems_name_the_command_when_the_selection_mixes_two() -> None:
    pairs = [(linux("a"), cmd(script=" ")), (windows("b"), cmd(PS, "Get-Date", timeout=-5))]
    problems = validate_selection(pairs)
    assert [x.field for x in problems] == ["script", "timeout"]
    assert problems[0].message.startswith("RunShellScript: ")
    assert problems[1].message.startswith("RunPowerShellScript: ")


# -- limits -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", Limit(1, False)),
        ("25", Limit(25)),
        (" 7 ", Limit(7)),
        ("1%", Limit(1, True)),
        ("50%", Limit(50, True)),
        ("100%", Limit(100, True)),
        ("10 %", Limit(10, True)),
    ],
)
def test_parse_limit_accepts_counts_and_percentages(text: str, expected: Limit) -> None:
    assert parse_limit(text, field="concurrency") == expected


def test_parse_limit_minimum_can_be_lowered() -> None:
    assert parse_limit("0", field="max_errors", minimum=0) == Limit(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "abc",
            "concurrency: 'abc' is not a number or percentage; use N (at least 1) or N% (1-100%)",
        ),
        ("", "concurrency: '' is not a number or percentage"),
        ("1.5", "concurrency: '1.5' is not a number or percentage"),
        ("%", "concurrency: '%' is not a number or percentage"),
        ("0", "concurrency: '0' is below the minimum of 1; use N (at least 1) or N% (1-100%)"),
        ("-3", "concurrency: '-3' is below the minimum of 1"),
        ("0%", "concurrency: '0%' is not a percentage from 1 to 100"),
        ("101%", "concurrency: '101%' is not a percentage from 1 to 100"),
        ("150%", "concurrency: '150%' is not a percentage from 1 to 100"),
    ],
)
def test_parse_limit_errors_name_the_field_and_what_is_allowed(text: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_limit(text, field="concurrency")
    (problem,) = info.value.problems
    assert problem.field == "concurrency" and problem.is_error
    assert str(info.value).startswith(expected)
    assert "N% (1-100%)" in str(info.value)


def test_parse_limit_error_uses_the_given_field_and_minimum() -> None:
    with pytest.raises(ValidationError) as info:
        parse_limit("1", field="max_errors", minimum=2)
    assert str(info.value).startswith("max_errors: '1' is below the minimum of 2")
    assert "at least 2" in str(info.value)


@pytest.mark.parametrize(
    ("limit", "total", "expected"),
    [
        (Limit(5), 100, 5),
        (Limit(5), 2, 5),  # a count is a count; callers cap it
        (Limit(10, True), 100, 10),
        (Limit(10, True), 5, 1),  # rounds up, at least 1
        (Limit(25, True), 10, 3),  # ceil(2.5)
        (Limit(100, True), 7, 7),
        (Limit(1, True), 0, 1),
    ],
)
def test_limit_resolve(limit: Limit, total: int, expected: int) -> None:
    assert limit.resolve(total) == expected


def test_limit_prints_as_typed() -> None:
    assert str(Limit(3)) == "3" and str(Limit(20, True)) == "20%"


# -- health -------------------------------------------------------------------------------


def test_split_runnable_keeps_ready_and_unknown_and_skips_the_rest() -> None:
    fleet = [linux(s.value, s) for s in HealthStatus]
    runnable, skipped = split_runnable(fleet)
    assert [m.name for m in runnable] == ["Ready", "Unknown"]
    assert [m.name for m in skipped] == [
        "NotReady",
        "Disconnected",
        "AgentTooOld",
        "Blocked",
        "NotPermitted",
        "Deallocated",
        "Unreachable",
    ]
    assert split_runnable([]) == ([], [])


def test_unquoted_positional_warning_only_when_azure_runs_it() -> None:
    command = Command(CommandId.SHELL, "echo $1", parameters=(Parameter("", "two words"),))
    vm = linux("web-1")
    local = Machine("local", "here", MachineKind.LOCAL, OsType.LINUX)

    on_azure = validate_selection([(vm, command)])
    assert [p.severity for p in on_azure] == ["warning"]
    assert "unquoted" in on_azure[0].message
    # Our own backends pass each value as one argument: nothing to warn about.
    assert validate_selection([(local, command)]) == []
