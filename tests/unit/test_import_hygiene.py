"""The engine's layering: core never imports the UI, and no core module imports itself back.

Every core module is imported in a fresh interpreter; the import graph is read from each
file's syntax tree, function-level imports included (an import put inside a function to
dodge a cycle is still a cycle in the design).
"""

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


def test_importing_all_of_core_imports_neither_textual_nor_the_front_ends() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {_core_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'tui'))\n"
        "print(len(bad)); print(bad[:5])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    count, sample = result.stdout.splitlines()
    assert count == "0", f"core imported the UI: {sample}"


def _core_import_graph() -> dict[str, set[str]]:
    """Each core module and the core modules it imports, anywhere in its file.

    ``from core.a import b`` is an import of ``core.a.b`` when that is a module, else of
    ``core.a``. A package's ``__init__`` runs before its modules, but that implicit step is
    not an edge: only what a file imports itself.
    """
    modules = {name: path for name, path in _core_files().items()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    child = f"{node.module}.{alias.name}"
                    found.add(child if child in modules else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {other for other in found if other in modules and other != name}
    return graph


def _core_files() -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in (ROOT / "core").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        files[name] = path
    return files


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_core_has_no_import_cycle() -> None:
    graph = _core_import_graph()
    assert _cycles(graph) == []
    # The check sees what it must: function-level imports, and a cycle when there is one.
    assert "core.fleet.sandbox" in graph["core.fleet.sources"]
    assert "core.azure.machine_health" in graph["core.backends.managed"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_inventories_list_and_backends_run_neither_knows_the_other() -> None:
    graph = _core_import_graph()
    crossing = sorted(
        f"{module} imports {other}"
        for module, imports in graph.items()
        for other in imports
        if (module.startswith("core.inventory") and other.startswith(("core.backends",
                                                                       "core.fleet")))
        or (module.startswith("core.backends") and other.startswith(("core.inventory",
                                                                      "core.fleet")))
    )
    assert crossing == []


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
    assert offending("core", {"bench", "tests", "tui"}) == []
    assert offending("tui", {"bench", "tests"}) == []
    # The check itself sees imports: the tests' sshd fixture starts bench's loopback sshd.
    assert "bench" in _top_level_imports(ROOT / "tests")["tests/sshd.py"]
