"""A footer that never cuts a key mid-word: the keys that do not fit whole are left out,
the essential ones (``?`` for the key sheet, which lists them all, and back) never.

Textual's footer lays its keys out in one row and cuts the row at the screen's edge: at
80 columns the run screen's row ended in ``g Gr``, and ``esc Back`` and ``? Keys`` were
gone. Here, after every layout, the keys are kept in their order while they fit in the
width left by the essential keys and the palette's; the rest are hidden (``?`` still
lists them).
"""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey

ESSENTIAL = frozenset({"help", "app.help", "back", "quit", "app.quit", "cancel", "leave",
                       "dismiss", "close", "run", "save"})
"""Actions whose key stays in the footer at any width: the key sheet, the ways out of a
screen (back, cancel, leave, close), and compose's run and save (at 80 columns ``^s Save``
came after the parameter keys and was left out; the composer has no ``?`` to list it, as its
editor types the ``?``)."""


class FittingFooter(Footer):
    """:class:`~textual.widgets.Footer`, each key whole or not at all."""

    def on_mount(self) -> None:
        self.call_after_refresh(self._fit)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        keys = [k for k in self.query(FooterKey) if not k.has_class("-command-palette")]
        if not keys or not self.size.width:
            return
        # The palette's key is docked right, after a one-column bar.
        palette = sum(self._width(k) + 1 for k in self.query(FooterKey)
                      if k.has_class("-command-palette"))
        widths = {key: self._width(key) for key in keys}
        room = self.size.width - palette - sum(widths[k] for k in keys
                                               if k.action in ESSENTIAL)
        for key in keys:
            if key.action in ESSENTIAL:
                continue
            if widths[key] <= room:
                room -= widths[key]
            else:
                room = -1  # keep the order: nothing after a key left out
            key.display = room >= 0

    @staticmethod
    def _width(key: FooterKey) -> int:
        """Columns ``key`` takes: its own width as drawn, with its margins."""
        content = key.get_content_width(key.size, key.app.size)
        styles = key.styles
        return (content + styles.padding.left + styles.padding.right
                + styles.margin.left + styles.margin.right)
