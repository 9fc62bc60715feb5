"""What colours a Textual screenshot (``App.export_screenshot``, an SVG) draws, and where."""

from __future__ import annotations

import html
import re

_CLASS = re.compile(r"\.([\w-]+) \{ fill: (#[0-9a-fA-F]{6})")
_TEXT = re.compile(r'<text class="([\w-]+)"[^>]*>([^<]*)</text>')
_CELL = re.compile(r'<rect fill="(#[0-9a-fA-F]{6})"[^>]*shape-rendering="crispEdges"')


def text_colours(svg: str) -> dict[str, str]:
    """Each class of text in the screenshot and its colour (``#rrggbb``, lower case)."""
    return {name: colour.lower() for name, colour in _CLASS.findall(svg)}


def colours_of(svg: str, text: str) -> set[str]:
    """The colours of the runs of text that start with ``text`` (spaces as in the text)."""
    classes = text_colours(svg)
    return {classes[cls] for cls, shown in _TEXT.findall(svg)
            if html.unescape(shown).replace("\xa0", " ").startswith(text) and cls in classes}


def drawn_colours(svg: str) -> set[str]:
    """Every colour one can see in the terminal's cells: of text that is not blank, and of
    cell backgrounds (not the window's frame and buttons around them, nor the line ends
    Rich's SVG export gives a default colour)."""
    classes = text_colours(svg)
    shown = {classes[cls] for cls, text in _TEXT.findall(svg)
             if cls in classes and html.unescape(text).replace("\xa0", " ").strip()}
    return shown | {c.lower() for c in _CELL.findall(svg)}


def is_grey(colour: str) -> bool:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return red == green == blue


def screen_text(svg: str) -> str:
    """The text of the screenshot, runs joined (spaces as spaces)."""
    return "".join(html.unescape(shown).replace("\xa0", " ") for _, shown in _TEXT.findall(svg))
