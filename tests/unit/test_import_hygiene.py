"""The engine never imports the UI: every core module, in a fresh interpreter."""

from __future__ import annotations

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
        "core.journal",
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
