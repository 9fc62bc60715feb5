"""docs/architecture.md names every module of core/ and tui/: a new module gets its row."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_module_of_core_and_tui_is_named_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(p.relative_to(ROOT).as_posix() for package in ("core", "tui")
                     for p in (ROOT / package).rglob("*.py") if p.name != "__init__.py")
    assert len(modules) > 100
    missing = [m for m in modules if not _named(m, doc)]
    assert missing == [], f"no row in docs/architecture.md for: {', '.join(missing)}"


def _named(module: str, doc: str) -> bool:
    """By its path (``core/fleet/ad_hoc.py``), its path in its package's row
    (``fleet/ad_hoc.py``) or its file name in backticks or a list (``arm.py``)."""
    relative = module.split("/", 1)[1]
    name = module.rsplit("/", 1)[1]
    return (module in doc or relative in doc or f"`{name}`" in doc
            or any(f"{before}{name}" in doc for before in " ,("))
