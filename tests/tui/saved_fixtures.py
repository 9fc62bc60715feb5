"""Saved commands for the TUI tests: a config dir holding good and broken command files,
and helpers to drive the palette, the composer's typed parameters and the app on a sandbox."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.command import Command as PaletteCommand
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input

from tests.tui.test_fleet_screen import FLEET
from tui.app import FleetrunApp
from tui.widgets.compose.typed_parameter import TypedParameterRow

GREET = """\
name = "greet-hosts"
description = "Say hello from each host"
tags = ["demo", "hello"]
timeout = 60

[[parameters]]
name = "GREETING"
description = "What to say"
default = "hello"
choices = ["hello", "hi"]

[[parameters]]
name = "TOKEN"
protected = true
required = true

[[parameters]]
name = "COUNT"
pattern = '^[0-9]+$'

[scripts]
shell = 'echo "$GREETING from $HOSTNAME x${COUNT:-1} (${#TOKEN} secret chars)"'
"""

TOUCH = """\
name = "touch-marker"
description = "Writes a marker file: changes state"
tags = ["demo"]
dangerous = true

[scripts]
shell = 'echo "touched $HOSTNAME"'
"""

NOT_TOML = 'name = "half-written\n[scripts]\nshell = "true"\n'
"""A file cut while being written: not TOML at all."""

BAD_FIELD = """\
name = "bad-default"

[[parameters]]
name = "port"
default = 443

[scripts]
shell = "true"
"""
"""Valid TOML with one field wrong (a number where a string is needed)."""

CANARY = "Saved-canary-9d2e-secret"


def write_commands(config_dir: Path, files: dict[str, str]) -> Path:
    """``files`` (file name → text) in ``config_dir/commands``, owner-only as saved ones are."""
    directory = config_dir / "commands"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def sandbox_app(tmp_path: Path, monkeypatch: object, files: dict[str, str]) -> FleetrunApp:
    """The app on the TUI tests' sandbox fleet, with ``files`` as the user's saved commands."""
    setenv: Callable[[str, str], None] = monkeypatch.setenv  # type: ignore[attr-defined]
    setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    write_commands(tmp_path / "config", files)
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    return FleetrunApp([f"sandbox:{path}"])


async def until(pilot: Pilot[None], condition: Callable[[], bool], what: str,
                within: float = 30.0) -> None:
    # A deadline in wall time, not a count of pauses: at load 9 a check before a run took
    # longer than 300 pauses of 20 ms.
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.02)
    if condition():
        return
    raise AssertionError(f"timed out waiting for: {what}; on {pilot.app.screen!r}")


async def palette_search(pilot: Pilot[None], query: str) -> list[str]:
    """Open the palette, type ``query``: the hits' names (saved or system), best first."""
    app = pilot.app
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette), "the palette")
    await pilot.press(*query)

    def hits() -> list[str]:
        options = app.screen.query_one(CommandList).options
        return [o.hit.text or "" for o in options if isinstance(o, PaletteCommand)]

    # The palette gathers hits in the background and shows them in batches: wait for quiet
    # (up to 15 s: on a loaded machine the first batch alone can take seconds).
    last: list[str] = []
    for _ in range(300):
        await pilot.pause(0.05)
        now = hits()
        if now and now == last:
            return now
        last = now
    return last


def typed_rows(app: FleetrunApp) -> dict[str, TypedParameterRow]:
    return {row.spec.name: row for row in app.screen.query(TypedParameterRow)}


def set_value(row: TypedParameterRow, value: str) -> None:
    row.query_one(Input).value = value


def record_notifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every notification the apps built from now on post, kept after its toast has timed
    out (a loaded machine can outlast a toast). Call it before the app is built: parts of
    the app keep its ``notify`` from the start."""
    posted: list[str] = []
    post = FleetrunApp.notify

    def notify(self: FleetrunApp, message: str, *args: Any, **kwargs: Any) -> None:
        posted.append(str(message))
        post(self, message, *args, **kwargs)

    monkeypatch.setattr(FleetrunApp, "notify", notify)
    return posted


def screen_text(app: App[Any]) -> str:
    """Everything on screen (toasts included) without whitespace, as test_compose reads it:
    the SVG splits lines into styled runs, so only the characters and their order are kept."""
    svg = app.export_screenshot()
    body = svg[svg.index("<g class"):]  # past the embedded stylesheet
    return "".join(html.unescape(re.sub(r"<[^>]+>", "", body)).split())
