"""NO_COLOR (no-color.org) in the headless CLI: rich drops colour, the state glyphs stay."""

from __future__ import annotations

import re

from tests.cli.conftest import CliRunner

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")
"""An SGR sequence that sets a foreground colour."""


def test_no_color_leaves_the_glyphs_and_drops_the_colours(cli: CliRunner) -> None:
    args = ("run", "--fleet", "local", "--shell", "exit 7")
    # FORCE_COLOR: rich colours a pipe as it would a terminal.
    coloured = cli(*args, env={"FORCE_COLOR": "1"})
    plain = cli(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert coloured.returncode == plain.returncode == 1, plain.stderr
    assert COLOUR.search(coloured.stdout), coloured.stdout
    assert not COLOUR.search(plain.stdout) and not COLOUR.search(plain.stderr), plain.stdout
    for result in (coloured, plain):
        assert "✗ Failed" in re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
