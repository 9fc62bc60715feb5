"""A widget's style worked out once per render pass, not once per line.

Textual's ``rich_style`` walks every ancestor and blends their backgrounds each time it is
read, and line-rendered widgets read it for every line: on the run screen, with the tail,
the full output and the machine table redrawn at each key, that was a seventh of a frame's
CPU. Nothing can restyle a widget in the middle of rendering its lines, so within one
``render_lines`` call the first answer holds for all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip

if TYPE_CHECKING:
    from textual.widget import Widget

    _Base = Widget
else:
    # Not a DOMNode at run time: Textual takes a widget's CSS (its DEFAULT_CSS and the type
    # names selectors match) from the first DOMNode base only, which must stay the widget's
    # own base (a Log must still be styled as a Log).
    _Base = object


class StylePerPass(_Base):
    """Mix in before the widget class: ``rich_style`` is computed once per render pass."""

    _pass_style: Style | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._pass_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._pass_style = None

    @property
    def rich_style(self) -> Style:
        return self._pass_style if self._pass_style is not None else super().rich_style
