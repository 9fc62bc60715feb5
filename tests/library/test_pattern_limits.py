"""A saved command's ``pattern`` cannot pin a CPU: a check that takes too long gives up.

``^(a|a)+$`` against ``aaa…ab`` backtracks exponentially in any backtracking engine: at 26
letters Python's re takes seconds, and every letter more doubles it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.library import CommandParameter, LibraryError, ParameterError, SavedCommand, read_command
from core.model import CommandId

EXPLOSIVE = r"^(a|a)+$"
HOSTILE_VALUE = "a" * 40 + "b"
"""Hours of backtracking without a limit: a check that ends at all has given up."""

GUARD = 30.0
"""Seconds: not a speed goal (the limit is 50 ms), only what tells giving up from hanging."""

COMMAND = SavedCommand(
    name="probe",
    scripts={CommandId.SHELL: "echo $target"},
    parameters=(CommandParameter("target", pattern=EXPLOSIVE),),
)


def test_a_value_that_makes_the_pattern_explode_is_too_complex_not_a_hang() -> None:
    started = time.monotonic()
    with pytest.raises(ParameterError) as caught:
        COMMAND.command_for(CommandId.SHELL, {"target": HOSTILE_VALUE})
    elapsed = time.monotonic() - started
    assert elapsed < GUARD, f"the check took {elapsed:.1f} s"
    (problem,) = caught.value.problems
    assert problem.parameter == "target"
    assert "pattern too complex to check" in problem.message


def test_the_check_still_tells_a_match_from_a_mismatch() -> None:
    assert COMMAND.parameters[0].check("aaaa") is None
    why = COMMAND.parameters[0].check("aaab")
    assert why is not None and "not allowed" in why


def test_a_pattern_that_does_not_compile_is_named_with_its_file_and_field(
        tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n[[parameters]]\nname = "x"\npattern = "(unclosed"\n'
                    '[scripts]\nshell = "echo $x"\n')
    with pytest.raises(LibraryError) as caught:
        read_command(path)
    assert str(caught.value).startswith(f"{path}: parameters[0].pattern: ")
    assert "not a valid regular expression" in str(caught.value)


def test_a_default_that_makes_the_pattern_explode_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "slow.toml"
    path.write_text(f'name = "slow"\n[[parameters]]\nname = "x"\npattern = \'{EXPLOSIVE}\'\n'
                    f'default = "{HOSTILE_VALUE}"\n[scripts]\nshell = "echo $x"\n')
    started = time.monotonic()
    with pytest.raises(LibraryError) as caught:
        read_command(path)
    assert time.monotonic() - started < GUARD
    assert str(caught.value).startswith(f"{path}: parameters[0].default: ")
    assert "pattern too complex to check" in str(caught.value)
