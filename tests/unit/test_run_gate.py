"""The gate every new run passes: RunSession.plan refuses what must not be sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.fanout import plan_run, rerun_assignments
from core.journal_store import Journal
from core.model import Command, CommandId, Parameter, RunState
from core.runner import RunSession
from core.validate import ValidationError
from tests.fakes import FakeBackend, Scenario, machines

GOOD = Command(CommandId.SHELL, "echo hi", timeout=60)
BAD_NAME = Command(CommandId.SHELL, "echo $x", parameters=(Parameter("not-a-name", "1"),))


def test_errors_raise_with_the_problems_and_nothing_is_planned(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    fleet = machines(2)
    windows_only = Command(CommandId.POWERSHELL, "Get-Date")
    with pytest.raises(ValidationError) as info:
        RunSession.plan([(fleet[0], GOOD), (fleet[1], windows_only)], lambda _m: FakeBackend({}),
                        journal=journal, runs_root=tmp_path / "runs")
    [problem] = info.value.problems
    assert problem.is_error and problem.field == "selection"
    assert fleet[1].name in problem.message and fleet[0].name not in problem.message
    assert journal.list_runs() == []
    assert not (tmp_path / "runs").exists()


def test_warnings_are_kept_on_the_session(tmp_path: Path) -> None:
    empty = Command(CommandId.SHELL, "echo ${E-unset}", parameters=(Parameter("E", ""),))
    session = RunSession.plan([(m, empty) for m in machines(2)], lambda _m: FakeBackend({}),
                              runs_root=tmp_path)
    [warning] = session.warnings
    assert not warning.is_error and warning.field == "parameters[0].value"
    assert RunSession.plan([(m, GOOD) for m in machines(2)], lambda _m: FakeBackend({}),
                           runs_root=tmp_path).warnings == []


async def test_a_rerun_whose_command_is_now_refused_starts_nothing(tmp_path: Path) -> None:
    """A run made before a rule existed (planned here without the gate) fails; its rerun
    passes the gate like any new run and is refused, naming the problem."""
    fleet = machines(2)
    backend = FakeBackend({fleet[1].id: Scenario(exit_code=3)})
    old = RunSession(plan_run([(m, BAD_NAME) for m in fleet]), lambda _m: backend,
                     runs_root=tmp_path / "runs")
    await old.execute()
    assert old.run.machines[fleet[1].id].state is RunState.FAILED
    journal = Journal(tmp_path / "journal.sqlite3")
    with pytest.raises(ValidationError) as info:
        RunSession.plan(rerun_assignments(old.run), lambda _m: backend, journal=journal,
                        parent_run_id=old.run.run_id, runs_root=tmp_path / "runs")
    [problem] = info.value.problems
    assert problem.field == "parameters[0].name" and "'not-a-name'" in problem.message
    assert "not-a-name" in str(info.value)
    assert journal.list_runs() == []
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [old.run.run_id]
