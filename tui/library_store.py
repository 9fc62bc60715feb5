"""The app's saved-command library: read from disk when asked, each bad file reported once.

The palette, the ``:`` command line and the composer's save dialog share one
:class:`SavedCommands` per app (:func:`saved_commands`), so a command saved in the composer
is in the palette at once, and a broken file is named once, not at every search.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.library import Library, LibraryProblem, load_library

Notify = Callable[..., Any]
"""``App.notify``: (message, *, title, severity, timeout)."""

PROBLEM_SECONDS = 20
"""A broken saved command stays on screen long enough to read its path and field."""


class SavedCommands:
    """The library as last read, and the problems already told to the user.

    Args:
        notify: Where problems are reported (the app's ``notify``).
        directory: The user's commands directory; ``<config dir>/commands`` when None.
    """

    def __init__(self, notify: Notify, directory: Path | None = None) -> None:
        self._notify = notify
        self.directory = directory
        """Where saves go and user commands are read from (None: the config dir's)."""
        self._reported: set[str] = set()
        self.library = Library()

    def reload(self) -> Library:
        """Read the library again; report each problem not reported before."""
        self.library = load_library(self.directory)
        self._report(self.library.problems)
        return self.library

    def _report(self, problems: list[LibraryProblem]) -> None:
        new = [p for p in problems if p.message not in self._reported]
        for problem in new:
            self._reported.add(problem.message)
            self._notify(f"{problem.message}\nThe other saved commands are loaded.",
                         title="Saved command skipped", severity="error",
                         timeout=PROBLEM_SECONDS, markup=False)


def saved_commands(app: object) -> SavedCommands:
    """The app's library (``app.saved_commands``), read now if the app has none yet.

    Apps other than fleetrun's (a test's bare app) get one attached on first use.
    """
    store = getattr(app, "saved_commands", None)
    if isinstance(store, SavedCommands):
        return store
    notify = getattr(app, "notify", None)
    store = SavedCommands(notify if notify is not None else _ignore)
    store.reload()
    setattr(app, "saved_commands", store)  # noqa: B010 - any App, not only fleetrun's
    return store


def _ignore(*args: object, **kwargs: object) -> None:
    return None
