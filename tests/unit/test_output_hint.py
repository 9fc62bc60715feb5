"""Without output storage, a run whose output filled Azure's 4 KB tail says once how to keep
it all; a run with whole outputs says nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.model import Command, CommandId
from core.output_hint import TAIL_BYTES, setup_output_hint
from core.runner import RunSession
from tests.fakes import FakeBackend, Scenario, machines
from tui.screens.run import execute_session


@dataclass
class TailsOnly(FakeBackend):
    """An Azure backend without output storage, as far as the hint can tell."""

    keeps_full_output: bool = False


@dataclass
class Notes:
    """Stands in for the app: keeps what it was asked to notify."""

    shown: list[str] = field(default_factory=list)

    def notify(self, message: str, **_options: Any) -> None:
        self.shown.append(message)

    __hash__ = object.__hash__


async def finished_session(backend: FakeBackend, stdout: bytes, tmp_path: Path,
                           name: str = "r") -> RunSession:
    fleet = machines(3)
    command = Command(CommandId.SHELL, "big", timeout=30)
    backend.default = Scenario(stdout=stdout)
    session = RunSession.plan([(m, command) for m in fleet], lambda _m: backend,
                              runs_root=tmp_path / name)
    await session.execute()
    return session


async def test_a_tail_filled_without_storage_names_setup_output(tmp_path: Path) -> None:
    session = await finished_session(TailsOnly(), b"x" * TAIL_BYTES, tmp_path)
    hint = setup_output_hint(session.run, session.backend_for)
    assert "fleetrun azure setup-output" in hint and "3 machine(s)" in hint


async def test_short_outputs_or_full_output_backends_say_nothing(tmp_path: Path) -> None:
    short = await finished_session(TailsOnly(), b"x" * 100, tmp_path, "a")
    assert setup_output_hint(short.run, short.backend_for) == ""
    whole = await finished_session(FakeBackend(), b"x" * 9000, tmp_path, "b")
    assert setup_output_hint(whole.run, whole.backend_for) == ""


async def test_the_app_shows_the_hint_once_per_session(tmp_path: Path) -> None:
    app, other = Notes(), Notes()
    for index in range(3):
        backend = TailsOnly()
        fleet = machines(2)
        command = Command(CommandId.SHELL, "big", timeout=30)
        backend.default = Scenario(stdout=b"y" * 5000)
        session = RunSession.plan([(m, command) for m in fleet], lambda _m, b=backend: b,
                                  runs_root=tmp_path / f"run{index}")
        await execute_session(session, app)  # type: ignore[arg-type]
    assert len(app.shown) == 1 and "setup-output" in app.shown[0]
    quiet = TailsOnly()
    quiet.default = Scenario(stdout=b"short")
    session = RunSession.plan([(m, Command(CommandId.SHELL, "x")) for m in machines(1)],
                              lambda _m: quiet, runs_root=tmp_path / "quiet")
    await execute_session(session, other)  # type: ignore[arg-type]
    assert other.shown == []
