"""Every run state and health status reads without colour: a glyph of its own, one cell wide,
in common terminal fonts; and each view draws its colour."""

from __future__ import annotations

from pathlib import Path

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from core.model import HealthStatus, RunState, Waiting
from tui.cli import render as cli_render
from tui.states import HEALTH, LIVE_STATES, RUN_STATES, WAITING, Look, Tone
from tui.widgets.fleet.machine_table import HEALTH_STYLE, health_text
from tui.widgets.run.cells import STATE_STYLE, state_text

FONT_PLACES = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu-sans-mono-fonts/DejaVuSansMono.ttf"),  # Fedora
    Path("/usr/share/fonts/TTF/DejaVuSansMono.ttf"),  # Arch
)


@pytest.fixture(scope="module")
def dejavu_mono() -> set[int]:
    """The code points DejaVu Sans Mono draws (the fonts-dejavu-core package)."""
    path = next((p for p in FONT_PLACES if p.exists()), None)
    assert path is not None, "DejaVu Sans Mono is not installed (apt-get install fonts-dejavu-core)"
    font = TTFont(path)
    cmap = font.getBestCmap()
    assert cmap is not None
    return set(cmap)


@pytest.mark.parametrize(("table", "enums"), [(LIVE_STATES, (RunState, Waiting)),
                                              (HEALTH, (HealthStatus,))],
                         ids=["run states and waits", "health"])
def test_every_state_has_a_glyph_of_its_own_one_cell_wide_in_dejavu_sans_mono(
        table: dict[object, Look], enums: tuple[type[RunState] | type[HealthStatus]
                                                | type[Waiting], ...],
        dejavu_mono: set[int]) -> None:
    assert set(table) == {member for enum in enums for member in enum}
    glyphs = [look.glyph for look in table.values()]
    assert len(set(glyphs)) == len(glyphs), f"two states share a glyph: {glyphs}"
    for state, look in table.items():
        assert len(look.glyph) == 1 and cell_len(look.glyph) == 1, (state, look.glyph)
        assert ord(look.glyph) in dejavu_mono, f"{state}: {look.glyph!r} is not in the font"


def test_the_font_check_can_fail(dejavu_mono: set[int]) -> None:
    """⧗ and ⏱, once TimedOut's glyph in the TUI and the CLI, are not in the font."""
    assert ord("⧗") not in dejavu_mono and ord("⏱") not in dejavu_mono
    assert ord("✓") in dejavu_mono


def test_the_tui_and_the_cli_draw_states_from_the_one_table() -> None:
    assert set(RUN_STATES) == set(RunState) and set(WAITING) == set(Waiting)
    expected = {state: (look.glyph, look.tone.value) for state, look in LIVE_STATES.items()}
    assert STATE_STYLE == expected
    assert cli_render.GLYPHS == expected
    assert HEALTH_STYLE == {s: (look.glyph, look.tone.value) for s, look in HEALTH.items()}


def test_a_tone_is_a_plain_ansi_style_the_theme_recolours() -> None:
    assert {tone.value for tone in Tone} == {"green", "red", "yellow", "cyan", "dim"}


def rendered_colours(text: Text) -> list[str | None]:
    """The colour of each segment ``Text.render`` makes (as the run table draws a cell)."""
    return [segment.style.color.name if segment.style and segment.style.color else None
            for segment in text.render(Console(), end="") if segment.text]


def test_a_state_cell_keeps_its_colour_when_rendered_line_by_line() -> None:
    """The run table draws cells with ``Text.render``, which drops a Text's base style: a
    state coloured that way came out in the table's plain text colour."""
    assert rendered_colours(state_text(RunState.FAILED)) == ["red"]
    assert rendered_colours(state_text(RunState.SUCCEEDED)) == ["green"]
    assert rendered_colours(Text("✗ Failed", style="red")) == [None]  # the old way
    assert state_text(RunState.TIMED_OUT).plain == "◷ TimedOut"
    assert health_text(HealthStatus.UNREACHABLE).plain == "↯ Unreachable"
