"""Themes: fleetrun's own and the user's, loaded beside Textual's, chosen in config.toml or
with Textual's theme picker; state colours come from the theme and stay readable."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.app import App
from textual.color import Color, rgb_to_lab
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.theme import BUILTIN_THEMES, Theme

from core.fanout import FanoutOptions
from core.model import Command, CommandId, RunState
from tests.tui.svg_colours import colours_of
from tests.tui.test_fleet_screen import FLEET
from tests.tui.test_key_sheet import settled_fleet_screen
from tui import themes
from tui.app import FleetrunApp
from tui.screens.run import RunScreen
from tui.themes import ThemeError
from tui.widgets.run.run_table import RunTable

SIZE = (140, 30)
STATE_VARIABLES = ("text-success", "text-error", "text-warning", "text-primary")
"""The theme colours states are drawn in (tui.states' tones: green, red, yellow, cyan)."""


def variables(theme: Theme) -> dict[str, str]:
    return {**theme.to_color_system().generate(), **theme.variables}


# -- colour science: contrast (WCAG 2) and deuteranopia (Machado, Oliveira, Fernandes 2009) --


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def contrast(one: Color, other: Color) -> float:
    def luminance(c: Color) -> float:
        return 0.2126 * _linear(c.r) + 0.7152 * _linear(c.g) + 0.0722 * _linear(c.b)

    high, low = sorted((luminance(one), luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)


DEUTERANOPIA = ((0.367322, 0.860646, -0.227968),
                (0.280085, 0.672501, 0.047413),
                (-0.011820, 0.042940, 0.968881))


def as_deuteranope_sees(colour: Color) -> Color:
    linear = (_linear(colour.r), _linear(colour.g), _linear(colour.b))
    seen = [min(max(sum(m * c for m, c in zip(row, linear, strict=True)), 0.0), 1.0)
            for row in DEUTERANOPIA]
    red, green, blue = (round(255 * (12.92 * v if v <= 0.0031308
                                     else 1.055 * v ** (1 / 2.4) - 0.055)) for v in seen)
    return Color(red, green, blue)


def difference(one: Color, other: Color) -> float:
    """CIE76 ΔE: about 2 is just noticeable, over 30 is plainly another colour."""
    a, b = rgb_to_lab(one), rgb_to_lab(other)
    return float(((a.L - b.L) ** 2 + (a.a - b.a) ** 2 + (a.b - b.b) ** 2) ** 0.5)


# -- fleetrun's own themes --------------------------------------------------------------------


def test_fleetrun_ships_at_least_three_themes_of_its_own() -> None:
    names = [t.name for t in themes.shipped_themes()]
    assert len(names) >= 3
    assert {"fleetrun-dark", "fleetrun-night", "fleetrun-light", "fleetrun-colorblind"} <= \
        set(names)
    assert not set(names) & set(BUILTIN_THEMES)
    assert {t.dark for t in themes.shipped_themes()} == {True, False}  # a light one too


@pytest.mark.parametrize("theme", themes.shipped_themes(), ids=lambda t: t.name)
def test_state_colours_and_text_are_readable_on_every_one_of_our_themes(theme: Theme) -> None:
    """WCAG AA for text (4.5:1) against the background and the tables' surface."""
    palette = variables(theme)
    for ground in ("background", "surface"):
        behind = Color.parse(palette[ground])
        assert contrast(Color.parse(palette["foreground"]), behind) >= 7, ground
        for name in STATE_VARIABLES:
            ratio = contrast(Color.parse(palette[name]), behind)
            assert ratio >= 4.5, f"{theme.name}: {name} on {ground} is {ratio:.1f}:1"


def test_the_deuteranopia_simulation_merges_red_and_green() -> None:
    red, green = Color.parse("#D03030"), Color.parse("#30A030")
    assert difference(red, green) > 60
    assert difference(as_deuteranope_sees(red), as_deuteranope_sees(green)) < 20


def test_the_colourblind_theme_keeps_states_apart_for_deuteranopia() -> None:
    theme = next(t for t in themes.shipped_themes() if t.name == "fleetrun-colorblind")
    palette = variables(theme)
    for one, other in itertools.combinations(STATE_VARIABLES, 2):
        seen = difference(as_deuteranope_sees(Color.parse(palette[one])),
                          as_deuteranope_sees(Color.parse(palette[other])))
        assert seen >= 30, f"{one} and {other}: ΔE {seen:.0f} to a deuteranope"


def test_states_are_drawn_in_the_themes_colours() -> None:
    for theme in themes.shipped_themes():
        palette = variables(theme)
        ansi = themes.ansi_palette(theme, App().ansi_theme_dark)
        for number, name in ((1, "text-error"), (2, "text-success"), (3, "text-warning"),
                             (6, "text-primary")):
            assert Color(*ansi.ansi_colors[number]) == Color.parse(palette[name]), name


# -- theme files ---------------------------------------------------------------------------


GOOD = """
name = "ops-dusk"
primary = "#3366CC"
background = "#101010"
dark = true
[variables]
"text-success" = "#66DD99"
"block-cursor-text-style" = "bold underline"
"input-selection-background" = "#3366CC 40%"
"""


@pytest.mark.parametrize(("text", "field", "says"), [
    ('name = "x"\nprimary = "#123456"\ncolour = "red"\n', "colour", "not a theme field"),
    ('primary = "#123456"\n', "name", "required"),
    ('name = "x"\n', "primary", "required"),
    ('name = "x"\nprimary = "#12345"\n', "primary", "not a colour"),
    ('name = "x"\nprimary = "#123456"\nsuccess = 3\n', "success", "a colour as a string"),
    ('name = "x"\nprimary = "#123456"\ndark = "yes"\n', "dark", "true"),
    ('name = "x"\nprimary = "#123456"\ntext_alpha = 2\n', "text_alpha", "from 0 to 1"),
    ('name = "x"\nprimary = "#123456"\n[variables]\n"text-sucess" = "#fff"\n',
     "variables.text-sucess", "not a Textual theme variable"),
    ('name = "x"\nprimary = "#123456"\n[variables]\n"text-error" = "loud"\n',
     "variables.text-error", "not a colour"),
    ('name = "x"\nprimary = "#123456"\n[variables]\n"block-cursor-text-style" = "bolder"\n',
     "variables.block-cursor-text-style", "not a text style"),
    ('name = "x"\nprimary = "#123456"\nvariables = 1\n', "variables", "a table"),
    ('name = "x\nprimary = 1\n', "", "not valid TOML"),
])
def test_a_bad_theme_file_is_refused_naming_the_file_and_field(
        tmp_path: Path, text: str, field: str, says: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ThemeError) as raised:
        themes.load_theme_file(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {field}") and says in message, message


def test_a_good_theme_file_gives_the_theme_it_describes(tmp_path: Path) -> None:
    path = tmp_path / "dusk.toml"
    path.write_text(GOOD)
    theme = themes.load_theme_file(path)
    assert (theme.name, theme.primary, theme.background, theme.dark) == \
        ("ops-dusk", "#3366CC", "#101010", True)
    assert variables(theme)["text-success"] == "#66DD99"


def test_a_user_theme_file_others_may_write_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "dusk.toml"
    path.write_text(GOOD)
    path.chmod(0o664)
    loaded, (problem,) = themes.user_themes(tmp_path)
    assert loaded == []
    assert str(problem) == (f"{path}: writable by group (mode 0664); fleetrun uses only "
                            f"files that are yours and private: chmod go-w {path}")


class Themed:
    """What :func:`themes.apply_theme` needs of an app."""

    def __init__(self) -> None:
        self.theme = "textual-dark"
        self.available_themes = dict(BUILTIN_THEMES)

    def register_theme(self, theme: Theme) -> None:
        self.available_themes[theme.name] = theme


def test_an_unknown_theme_name_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    app = Themed()
    themes.register_themes(app, tmp_path)
    themes.apply_theme(app, "fleetrun-night")
    assert app.theme == "fleetrun-night"
    with pytest.raises(ThemeError) as raised:
        themes.apply_theme(app, "fleetrun-nite")
    message = str(raised.value)
    assert "'fleetrun-nite'" in message
    assert "fleetrun-dark, fleetrun-light" in message and "textual-dark" in message
    assert app.theme == "fleetrun-night"


# -- in the app ------------------------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETRUN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "config" / "themes").mkdir(parents=True)
    return tmp_path / "config"


@pytest.fixture
async def app(tmp_path: Path, config_dir: Path) -> AsyncIterator[FleetrunApp]:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    yield FleetrunApp([f"sandbox:{path}"])


def notes(app: App[None]) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_config_theme_is_the_theme_the_app_opens_in(
        app: FleetrunApp, config_dir: Path) -> None:
    (config_dir / "config.toml").write_text('theme = "fleetrun-night"\n')
    async with app.run_test(size=SIZE) as pilot:
        await settled_fleet_screen(pilot, app)
        assert app.theme == "fleetrun-night"
        assert app.current_theme.background == "#17120E"
        assert not [n for n in notes(app) if "theme" in n.lower()]


async def test_a_user_theme_loads_and_a_bad_one_is_reported_and_skipped(
        app: FleetrunApp, config_dir: Path) -> None:
    (config_dir / "themes" / "dusk.toml").write_text(GOOD)
    bad = config_dir / "themes" / "broken.toml"
    bad.write_text('name = "broken"\nprimary = "#123456"\nsuccess = "greenish"\n')
    (config_dir / "config.toml").write_text('theme = "ops-dusk"\n')
    async with app.run_test(size=SIZE) as pilot:
        await settled_fleet_screen(pilot, app)
        assert app.theme == "ops-dusk"
        assert "broken" not in app.available_themes
        assert {"fleetrun-dark", "fleetrun-light", "textual-dark"} <= set(app.available_themes)
        (problem,) = [n for n in notes(app) if "broken.toml" in n]
        assert f"{bad}: success: 'greenish' is not a colour" in problem


async def test_an_unknown_configured_theme_is_reported_and_the_default_kept(
        app: FleetrunApp, config_dir: Path) -> None:
    (config_dir / "config.toml").write_text('theme = "solarised"\n')
    async with app.run_test(size=SIZE) as pilot:
        await settled_fleet_screen(pilot, app)
        assert app.theme == "textual-dark"
        (problem,) = [n for n in notes(app) if "solarised" in n]
        assert "the themes are: fleetrun-colorblind, fleetrun-dark" in problem


async def test_textual_theme_picker_lists_and_switches_to_ours(app: FleetrunApp) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await settled_fleet_screen(pilot, app)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"theme")
        await pilot.pause(0.3)
        await pilot.press("enter")  # "Theme: change the current theme"
        await pilot.pause(0.3)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"fleetrun-light")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.theme == "fleetrun-light"


async def wait_for(pilot: Pilot[None], condition: Callable[[], bool], what: str) -> None:
    for _ in range(300):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for: {what}")


@pytest.mark.parametrize("name", ["fleetrun-colorblind", "fleetrun-light", "textual-dark"])
async def test_run_states_are_drawn_in_the_theme_colours(
        app: FleetrunApp, config_dir: Path, name: str) -> None:
    """On the run screen's own line-rendered table, as on Textual's tables."""
    (config_dir / "config.toml").write_text(f'theme = "{name}"\n')
    async with app.run_test(size=SIZE) as pilot:
        screen = await settled_fleet_screen(pilot, app)
        web = [m for m in screen.machines if m.name in ("web-1", "web-2")]
        app.start_run([(web[0], Command(CommandId.SHELL, "true", timeout=0)),
                       (web[1], Command(CommandId.SHELL, "exit 3", timeout=0))],
                      FanoutOptions())
        await wait_for(pilot, lambda: isinstance(app.screen, RunScreen)
                       and app.screen.session.run.finished, "the run's end")
        await pilot.pause(0.6)  # the table's next redraw
        run_screen = app.screen
        assert isinstance(run_screen, RunScreen)
        states = {mr.state for mr in run_screen.session.run.machines.values()}
        assert states == {RunState.SUCCEEDED, RunState.FAILED}
        palette = variables(app.current_theme)
        # Off the cursor row (on it, the cursor's colours win, as in Textual's DataTable).
        table = run_screen.query_one(RunTable)
        assert table.cursor_row == 0 and table.current_machine_id() == web[0].id
        assert colours_of(app.export_screenshot(), "✗ Failed") == \
            {palette["text-error"].lower()}
        table.move_cursor(row=1)
        await pilot.pause(0.1)
        svg = app.export_screenshot()
        assert colours_of(svg, "✓ Succeeded") == {palette["text-success"].lower()}
        on_cursor = colours_of(svg, "✗ Failed") - {palette["text-error"].lower()}
        assert len(on_cursor) == 1  # the table's cursor row; the summary keeps text-error
