"""Checkboxes and radio buttons whose glyph says their state, not only their colour.

Textual draws ``▐X▌`` and ``▐●▌`` whether on or off and tells the two apart by colour
alone, which ``NO_COLOR`` and many colour-blind users cannot see. These draw a blank when
off.
"""

from __future__ import annotations

from textual.widgets import Checkbox, RadioButton


class StateCheckbox(Checkbox):
    """A checkbox showing ``X`` when ticked and a blank when not."""

    ON = "X"

    def on_mount(self) -> None:
        self._show_state()

    def watch_value(self) -> None:
        self._show_state()
        super().watch_value()

    def _show_state(self) -> None:
        self.BUTTON_INNER = self.ON if self.value else " "
        self.refresh()


class StateRadioButton(RadioButton):
    """A radio button showing ``●`` when chosen and a blank when not."""

    def on_mount(self) -> None:
        self._show_state()

    def watch_value(self) -> None:
        self._show_state()
        super().watch_value()

    def _show_state(self) -> None:
        self.BUTTON_INNER = "●" if self.value else " "
        self.refresh()
