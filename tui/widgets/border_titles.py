"""Border titles set only when they change.

Textual repaints the whole widget whenever its ``border_title`` or ``border_subtitle`` is
assigned, even the same text again. A pane retitled on every tick of a screen's redraw timer
(the run screen's output panes: ten times a second) would be rendered whole every frame,
which at 160x45 cost the run screen a sixth of a core with nothing on it changing.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from textual.widget import Widget

_shown: WeakKeyDictionary[Widget, tuple[str | None, str | None]] = WeakKeyDictionary()


def set_titles(widget: Widget, title: str | None = None, subtitle: str | None = None) -> None:
    """Give ``widget`` this border title and subtitle (None: leave that one as it is),
    repainting it only if either differs from what this function last gave it."""
    shown_title, shown_subtitle = _shown.get(widget, (None, None))
    if title is not None and title != shown_title:
        widget.border_title = title
        shown_title = title
    if subtitle is not None and subtitle != shown_subtitle:
        widget.border_subtitle = subtitle
        shown_subtitle = subtitle
    _shown[widget] = (shown_title, shown_subtitle)
