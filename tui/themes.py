"""Colour themes: fleetrun's own (the top-level ``themes`` package), the user's, choosing one.

A theme is a TOML file whose keys are the fields of Textual's :class:`~textual.theme.Theme`
(``themes/fleetrun-dark.toml`` explains each). fleetrun's own and the user's (from
``<config dir>/themes/*.toml``) are registered beside Textual's built-in themes, so
Textual's theme picker (ctrl+p, "Change theme") lists them all. ``theme = "NAME"`` at the
top of config.toml chooses one when the app starts.

States are drawn in plain ANSI colours (:mod:`tui.states`); :func:`ansi_palette` maps those
to the current theme's text colours, so a ✓ is the theme's success colour and reads on its
background, whichever theme is chosen.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from functools import partial
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Protocol

from rich.terminal_theme import TerminalTheme
from textual.color import Color, ColorParseError
from textual.css.constants import VALID_STYLE_FLAGS
from textual.theme import BUILTIN_THEMES, Theme

from core.config_file import ConfigFileError, read_config
from core.field_names import shown_key
from core.toml_text import parse_toml
from core.trusted_files import UntrustedFileError, check_trusted

COLOUR_FIELDS = ("primary", "secondary", "accent", "warning", "error", "success",
                 "foreground", "background", "surface", "panel", "boost")
NUMBER_FIELDS = ("luminosity_spread", "text_alpha")
FIELDS = ("name", "dark", *COLOUR_FIELDS, *NUMBER_FIELDS, "variables")
"""The keys a theme file may have, as :class:`~textual.theme.Theme` names its fields."""

ANSI_TO_THEME: dict[int, str] = {
    1: "text-error", 9: "text-error",        # red, bright_red
    2: "text-success", 10: "text-success",   # green, bright_green
    3: "text-warning", 11: "text-warning",   # yellow, bright_yellow
    6: "text-primary", 14: "text-primary",   # cyan, bright_cyan
}
"""The ANSI colours :mod:`tui.states` draws with, and the theme variable each one becomes."""

_DEFAULT_VARIABLES = BUILTIN_THEMES["textual-dark"].to_color_system().generate()
_PERCENT = re.compile(r"\d+(\.\d+)?%")


class ThemeError(ValueError):
    """A theme file with a mistake (naming the file and field), or an unknown theme name."""


class ThemedApp(Protocol):
    """What choosing a theme needs of an app (Textual's :class:`~textual.app.App` has it)."""

    theme: str

    @property
    def available_themes(self) -> dict[str, Theme]: ...

    def register_theme(self, theme: Theme) -> None: ...


# -- reading theme files ----------------------------------------------------------------


def parse_theme(data: Mapping[str, Any], source: str) -> Theme:
    """The :class:`Theme` a theme file's table describes.

    Args:
        data: The file's TOML, parsed.
        source: Where it came from, for messages (its path).

    Raises:
        ThemeError: An unknown key, a missing name or primary, a value of the wrong kind.
    """
    def fail(field: str, what: str) -> ThemeError:
        return ThemeError(f"{source}: {field}: {what}")

    for key in data:
        if key not in FIELDS:
            raise fail(shown_key(key), f"not a theme field; the fields are {', '.join(FIELDS)}")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise fail("name", "required: letters, digits, '-', '_' or '.', e.g. \"my-night\"")
    if "primary" not in data:
        raise fail("primary", "required: the theme's main colour, e.g. \"#3D9BFF\"")
    fields: dict[str, Any] = {"name": name}
    for key in COLOUR_FIELDS:
        if key in data:
            fields[key] = _checked(source, key, _colour, data[key])
    if "dark" in data:
        if not isinstance(data["dark"], bool):
            raise fail("dark", "true (light text on a dark background) or false")
        fields["dark"] = data["dark"]
    for key in NUMBER_FIELDS:
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not 0 <= value <= 1:
                raise fail(key, "a number from 0 to 1")
            fields[key] = float(value)
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise fail("variables", "a table of Textual theme variables, e.g. "
                   "[variables] \"text-success\" = \"#79E1A7\"")
    fields["variables"] = {
        key: _checked(source, f"variables.{shown_key(key)}", partial(_variable, key), value)
        for key, value in variables.items()
    }
    theme = Theme(**fields)
    try:
        theme.to_color_system().generate()
    except Exception as exc:  # Textual's own check of the whole palette
        raise ThemeError(f"{source}: Textual cannot build a palette from it: {exc}") from None
    return theme


class _Bad(Exception):
    """What is wrong with one value; the caller names the file and the field."""


def _checked(source: str, field: str, check: Callable[[object], str], value: object) -> str:
    try:
        return check(value)
    except _Bad as exc:
        raise ThemeError(f"{source}: {field}: {exc}") from None


def _colour(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad("a colour as a string, e.g. \"#3D9BFF\"")
    try:
        Color.parse(value)
    except ColorParseError:
        raise _Bad(f"{value!r} is not a colour: give \"#RRGGBB\", \"#RGB\", "
                   "\"rgb(r, g, b)\", \"hsl(h, s%, l%)\" or a colour name") from None
    return value


def _variable(key: str, value: object) -> str:
    """A theme variable's value, checked as far as its kind is known (colour, text style)."""
    if key not in _DEFAULT_VARIABLES:
        raise _Bad("not a Textual theme variable (such as text-success, "
                   "block-cursor-background or footer-key-foreground)")
    if not isinstance(value, str) or not value.strip():
        raise _Bad("a string")
    words = value.split()
    if key.endswith("-style"):
        unknown = [w for w in words if w not in VALID_STYLE_FLAGS]
        if unknown:
            raise _Bad(f"{unknown[0]!r} is not a text style; use "
                       f"{', '.join(sorted(VALID_STYLE_FLAGS))}")
    elif _is_colour_value(_DEFAULT_VARIABLES[key]) and not _is_colour_value(value):
        raise _Bad(f"{value!r} is not a colour: give \"#RRGGBB\" (\"#RRGGBBAA\"), a colour "
                   "name, or a colour and an opacity such as \"#C07A38 35%\"")
    return value


def _is_colour_value(value: str) -> bool:
    """A colour as Textual's CSS takes it in a variable: ``#abc``, ``#abc 35%``, ``auto 87%``."""
    words = value.split()
    if not 1 <= len(words) <= 2 or (len(words) == 2 and not _PERCENT.fullmatch(words[1])):
        return False
    if words[0] == "auto":
        return len(words) == 2
    try:
        Color.parse(words[0])
    except ColorParseError:
        return False
    return True


def load_theme_file(path: Path | Traversable) -> Theme:
    """The theme in one TOML file.

    Raises:
        ThemeError: The file cannot be read, is not TOML, or describes no valid theme.
    """
    try:
        data = parse_toml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThemeError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ThemeError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ThemeError(f"{path}: not valid TOML: {exc}") from None
    return parse_theme(data, str(path))


def shipped_themes() -> list[Theme]:
    """fleetrun's own themes, from the files of the ``themes`` package (sorted by file)."""
    folder = files("themes")
    return [load_theme_file(entry) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".toml")]


def user_themes(folder: Path) -> tuple[list[Theme], list[ThemeError]]:
    """The user's themes in ``folder`` (``*.toml``), and a problem for each file skipped."""
    loaded: list[Theme] = []
    problems: list[ThemeError] = []
    if not folder.is_dir():
        return loaded, problems
    for path in sorted(folder.glob("*.toml")):
        try:
            check_trusted(path)  # a theme can hide what a screen shows: it must be yours
            loaded.append(load_theme_file(path))
        except ThemeError as exc:
            problems.append(exc)
        except UntrustedFileError as exc:
            problems.append(ThemeError(str(exc)))
        except OSError as exc:
            problems.append(ThemeError(f"{path}: cannot be read: {exc.strerror or exc}"))
    return loaded, problems


# -- choosing one -------------------------------------------------------------------------


def register_themes(app: ThemedApp, user_folder: Path) -> list[ThemeError]:
    """Register fleetrun's themes, then the user's (a user theme of the same name wins).

    Returns:
        A problem for each user theme file that was skipped.
    """
    themes, problems = user_themes(user_folder)
    for theme in [*shipped_themes(), *themes]:
        app.register_theme(theme)
    return problems


def configured_theme(config_path: Path) -> str | None:
    """The top-level ``theme`` of config.toml, if it names one.

    A file that is not TOML gives None: the keymap's loading reports that already.

    Raises:
        ThemeError: ``theme`` is not a string.
    """
    try:
        data = read_config(config_path)
    except ConfigFileError:
        return None
    name = data.get("theme")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{config_path}: theme: give a theme's name as a string, "
                         "e.g. theme = \"fleetrun-night\"")
    return name.strip()


def apply_theme(app: ThemedApp, name: str) -> None:
    """Switch ``app`` to the theme called ``name`` (for config.toml and ``:theme NAME``).

    Raises:
        ThemeError: No theme has that name; the message lists those there are.
    """
    if name not in app.available_themes:
        raise ThemeError(f"no theme called {name!r}; the themes are: "
                         f"{', '.join(theme_names(app))}")
    app.theme = name


def theme_names(app: ThemedApp) -> list[str]:
    """Every theme the app can show, fleetrun's first, then the rest by name."""
    names = sorted(app.available_themes)
    return sorted(names, key=lambda n: (not n.startswith("fleetrun-"), n))


# -- states in the theme's colours ---------------------------------------------------------


def ansi_palette(theme: Theme, base: TerminalTheme) -> TerminalTheme:
    """``base`` (Textual's ANSI palette) with the colours states use taken from ``theme``.

    Args:
        theme: The current theme.
        base: The palette Textual would use for it (its dark or its light one).
    """
    variables = {**theme.to_color_system().generate(), **theme.variables}
    colours = [tuple(base.ansi_colors[number]) for number in range(16)]
    for number, variable in ANSI_TO_THEME.items():
        parsed = _parsed(variables.get(variable, ""))
        if parsed is not None:
            colours[number] = parsed
    background = _parsed(variables.get("background", "")) or tuple(base.background_color)
    foreground = _parsed(variables.get("foreground", "")) or tuple(base.foreground_color)
    return TerminalTheme(background, foreground, colours[:8], colours[8:])  # type: ignore[arg-type]


class AnsiPalettes:
    """The last palette :func:`ansi_palette` made, kept while its theme and base are the same.

    Textual asks for the ANSI palette each time it draws a widget.
    """

    def __init__(self) -> None:
        self._last: tuple[Theme, TerminalTheme, TerminalTheme] | None = None

    def get(self, theme: Theme, base: TerminalTheme) -> TerminalTheme:
        last = self._last
        if last is None or last[0] is not theme or last[1] is not base:
            last = self._last = (theme, base, ansi_palette(theme, base))
        return last[2]


def _parsed(value: str) -> tuple[int, int, int] | None:
    """A variable's colour as RGB; None for what is not one opaque colour (``ansi_green``)."""
    try:
        colour = Color.parse(value)
    except ColorParseError:
        return None
    return colour.rgb if colour.a == 1 else None


def set_up(app: ThemedApp, config_dir: Path) -> list[ThemeError]:
    """Register every theme, then choose config.toml's ``theme`` (when it names one).

    Args:
        app: The app.
        config_dir: fleetrun's config directory: ``config.toml`` and ``themes/`` in it.

    Returns:
        What went wrong, a problem each: a user theme file skipped, an unknown theme chosen.
    """
    problems = register_themes(app, config_dir / "themes")
    try:
        name = configured_theme(config_dir / "config.toml")
        if name is not None:
            apply_theme(app, name)
    except ThemeError as exc:
        problems.append(exc)
    return problems
