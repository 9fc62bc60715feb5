"""The app's base for Textual tables: ``j``/``k`` move the cursor, ``g``/``G`` go to the
first and last row, as in less, k9s and lazygit (on top of DataTable's arrows and pages).

A table whose screen gives ``g`` another meaning (the run screen's groups) should not use
this base for ``g``: the focused table would take the key first.
"""

from __future__ import annotations

from typing import TypeVar

from textual.widgets import DataTable

from tui import keymap

CellType = TypeVar("CellType")


class VimTable(DataTable[CellType]):
    """A :class:`~textual.widgets.DataTable` with the :data:`tui.keymap.VIM_TABLE` keys."""

    BINDINGS = keymap.VIM_TABLE
