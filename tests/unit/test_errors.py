"""One hierarchy of errors: every class core raises is a FleetrunError, and the CLI turns
each into one ``error:`` line with its exit code, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
from typing import NoReturn

import pytest

import core
from core.azure.arm import ArmError
from core.errors import BadInputError, FleetrunError, ServiceError
from core.journal_store import JournalError
from core.query import QueryError
from core.validate import Problem, ValidationError
from tui.cli import entry
from tui.cli.errors import EXIT_USAGE


def _exception_classes_of_core() -> list[type[BaseException]]:
    """Every exception class defined in a core module outside the sandbox."""
    found: list[type[BaseException]] = []
    for info in pkgutil.walk_packages(core.__path__, prefix="core."):
        if info.name == "core.sandbox" or info.name.startswith("core.sandbox."):
            continue
        module = importlib.import_module(info.name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if issubclass(cls, BaseException) and cls.__module__ == info.name]
    return found


def test_every_exception_class_in_core_is_a_fleetrun_error() -> None:
    classes = _exception_classes_of_core()
    assert len(classes) >= 25  # the walk sees them: it is not vacuously true
    strays = sorted(f"{cls.__module__}.{cls.__qualname__}" for cls in classes
                    if not issubclass(cls, FleetrunError))
    assert strays == []


def test_the_sandboxs_http_envelope_stays_out_of_the_hierarchy() -> None:
    # The sandbox is the server and shares nothing with the client (core/errors.py says why).
    from core.sandbox.errors import ArmError as SandboxArmError

    assert not issubclass(SandboxArmError, FleetrunError)


def test_errors_keep_their_message_and_the_bases_callers_catch() -> None:
    problem = ValidationError([Problem("script", "is empty")])
    assert isinstance(problem, BadInputError) and isinstance(problem, ValueError)
    assert str(problem) == str(Problem("script", "is empty"))
    assert isinstance(QueryError("x"), ValueError)
    assert FleetrunError("the journal is locked").where == ""
    assert FleetrunError("bad", where="config.toml").where == "config.toml"


def _main_raising(monkeypatch: pytest.MonkeyPatch, error: Exception) -> int:
    """``fleetrun`` whose subcommand's handler raises ``error``."""

    def handler(args: argparse.Namespace) -> NoReturn:
        raise error

    class Parser(argparse.ArgumentParser):
        def parse_args(self, *_: object, **__: object) -> argparse.Namespace:  # type: ignore[override]
            return argparse.Namespace(command="failing", handler=handler)

    monkeypatch.setattr("tui.cli.parser.build_parser", Parser)
    monkeypatch.setattr(entry, "_setup_logging", lambda: None)  # no log file in this test
    return entry.main([])


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (QueryError("unknown field 'colour' in 'colour:red'"),
         "error: unknown field 'colour' in 'colour:red'"),
        (JournalError("no run matches 'zz'; 'fleetrun history' lists runs"),
         "error: no run matches 'zz'; 'fleetrun history' lists runs"),
        (ArmError(503, "ServerBusy", "try again later", target="GET /subscriptions"),
         "error: azure: "),
    ],
    ids=["input", "world", "service"],
)
def test_the_cli_prints_one_error_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    error: Exception, expected: str,
) -> None:
    assert _main_raising(monkeypatch, error) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(expected)
    assert "Traceback" not in captured.err


def test_a_service_error_is_prefixed_with_its_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    class Unreachable(ServiceError):
        service = "vault"

    assert _main_raising(monkeypatch, Unreachable("cannot connect")) == EXIT_USAGE
    assert capsys.readouterr().err == "error: vault: cannot connect\n"
