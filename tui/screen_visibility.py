"""Whether a screen can be seen: a screen that cannot need not be redrawn.

Textual repaints the whole of the top screen whenever the screen just under it changes
(it may show through), so a screen that keeps redrawing on a timer while covered costs
every frame of the screen above it, not just its own. Screens that redraw on a timer ask
:func:`is_visible` first and redraw at once when they are shown again.
"""

from __future__ import annotations

from typing import Any

from textual.screen import ModalScreen, Screen


def is_visible(screen: Screen[Any]) -> bool:
    """Whether ``screen`` is on top, or only dialogs (modal screens, which show what is
    under them) are above it."""
    stack = screen.app.screen_stack
    if screen not in stack:
        return False
    above = stack[stack.index(screen) + 1:]
    return all(isinstance(over, ModalScreen) for over in above)
