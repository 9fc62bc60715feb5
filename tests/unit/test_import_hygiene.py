"""The engine never imports the UI: every core module, in a fresh interpreter."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parents[2]


def _core_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(core.__path__, prefix="core."))


def test_core_has_the_modules_we_expect() -> None:
    modules = _core_modules()
    for name in (
        "core.model",
        "core.fanout",
        "core.output",
        "core.journal_store",
        "core.journal_writer",
        "core.validate",
        "core.backends.local",
    ):
        assert name in modules


def test_importing_all_of_core_does_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {_core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(len(bad)); print(bad[:5])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    count, sample = result.stdout.splitlines()
    assert count == "0", f"core imported textual: {sample}"


def _imports(package: Path) -> dict[str, set[str]]:
    """Every ``core.*`` module each file of a package imports, read from its syntax tree."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = {n for n in names if n.startswith("core.")}
    return found


def test_the_sandbox_and_the_azure_client_never_import_each_other() -> None:
    # The sandbox is written from the references, not from our client: a misreading of the
    # API must not hide by being made twice (DESIGN.md).
    def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
        return [
            f"{file} imports {name}"
            for file, names in _imports(ROOT / package).items()
            for name in sorted(names)
            if name.startswith(forbidden)
        ]

    assert offending("core/sandbox", ("core.backends", "core.azure")) == []
    assert offending("core/backends", ("core.sandbox",)) == []
    if (ROOT / "core" / "azure").is_dir():
        assert offending("core/azure", ("core.sandbox",)) == []
    # The check itself sees imports: the sandbox does import the model.
    assert any("core.sandbox.fleet" in names for names in _imports(ROOT / "core/sandbox").values())


def _top_level_imports(package: Path) -> dict[str, set[str]]:
    """The top-level package of every import of each file of ``package``."""
    found: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_benchmarks_never_import_the_tests() -> None:
    # The tests may use bench's loopback sshd; bench never uses the tests' code (their
    # fixtures, pytest), and the product never starts a test server.
    def offending(package: str, forbidden: set[str]) -> list[str]:
        return [
            f"{file} imports {name}"
            for file, names in _top_level_imports(ROOT / package).items()
            for name in sorted(names & forbidden)
        ]

    assert offending("bench", {"tests", "pytest"}) == []
    assert offending("core", {"bench", "tests"}) == []
    assert offending("tui", {"bench", "tests"}) == []
    # The check itself sees imports: the tests' sshd fixture starts bench's loopback sshd.
    assert "bench" in _top_level_imports(ROOT / "tests")["tests/sshd.py"]
