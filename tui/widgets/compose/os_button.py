"""A parameter row's OS button: which machines get the parameter (Linux, Windows or both).

Free rows and a saved command's typed rows both have one; a typed row's starts at the mark
saved in the command's file (:attr:`core.library.CommandParameter.os`).
"""

from __future__ import annotations

from textual.widgets import Button

from core.model import OsType

OS_CHOICES: tuple[frozenset[OsType], ...] = (
    frozenset(OsType), frozenset({OsType.LINUX}), frozenset({OsType.WINDOWS}))
"""What the OS button cycles through (enter or space on it)."""


def os_label(oses: frozenset[OsType]) -> str:
    return "both OS" if len(oses) > 1 else f"{next(iter(oses))} only"


def only_os(oses: frozenset[OsType]) -> OsType | None:
    """The one OS of a mark, or None for both (what a saved command's file stores)."""
    return next(iter(oses)) if len(oses) == 1 else None


class OsButton(Button):
    """Which OS a parameter is for; pressing it cycles both → Linux → Windows."""

    DEFAULT_CSS = """
    OsButton { width: 14; min-width: 14; }
    """

    def __init__(self, oses: frozenset[OsType]) -> None:
        super().__init__(os_label(oses), classes="os", compact=True)
        self.oses = oses
        # A cycling choice takes every press; the click effect would swallow quick ones.
        self.active_effect_duration = 0

    def on_button_pressed(self) -> None:
        # Not stopped: the composer checks the run again when a parameter changes OS.
        self.cycle()

    def cycle(self) -> None:
        self.oses = OS_CHOICES[(OS_CHOICES.index(self.oses) + 1) % len(OS_CHOICES)]
        self.label = os_label(self.oses)
