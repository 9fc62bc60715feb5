"""The composer's problem list, above the footer: what blocks the run (and what only warns),
checked again once typing pauses.

One check per pause, not per key: each edit restarts a short timer, and the check that then
runs asks the core's validation in a thread, so a 256 KiB script never stalls the keys. ctrl+r
shows the errors at once (``show``); a selection in which nothing would run says why
(``show_line``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from rich.console import Group
from rich.text import Text
from textual import work
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import Static

from core.model import Machine
from core.validate import Problem, validate_selection
from tui.run_request import RunRequest
from tui.widgets.compose.confirm_run import problem_text

LIVE_CHECK_DELAY = 0.3
"""Seconds of no typing before the problem list is checked again."""

Plan = tuple[RunRequest | None, list[Problem], Callable[[Machine], bool] | None]
"""What the form describes: the request (None if the form cannot make one), the form's own
problems, and which machines' backends upload a big script (None: ask no backend)."""


class ProblemList(Static):
    """The problems of what the form describes, one line each (errors red, warnings yellow).

    Args:
        plan: Reads the form (on the event loop) into a ``Plan``; called for each check.
    """

    DEFAULT_CSS = """
    ProblemList { height: auto; max-height: 6; padding: 0 1; overflow-y: auto; }
    """

    def __init__(self, plan: Callable[[], Plan]) -> None:
        super().__init__(id="problems")
        self._plan = plan
        self._timer: Timer | None = None

    def recheck_soon(self) -> None:
        """The form changed: check again once it has not changed for ``LIVE_CHECK_DELAY``."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(LIVE_CHECK_DELAY, self._check_now)

    @property
    def checking(self) -> bool:
        """Whether a check of the typing is due or under way (the list may still change)."""
        return self._timer is not None or any(
            w.group == "live-problems" and not w.is_finished for w in self.workers)

    def show(self, problems: Sequence[Problem]) -> None:
        self.update(Group(*(problem_text(p) for p in problems)))

    def show_none(self) -> None:
        """The empty list (a form just loaded has not been checked yet)."""
        self.update("")

    def show_line(self, line: str) -> None:
        """One line in bold red in place of the list: why nothing can run."""
        self.update(Text(line, style="bold red"))

    def _check_now(self) -> None:
        self._timer = None
        if self.is_attached:
            self._check()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    @work(exclusive=True, group="live-problems")
    async def _check(self) -> None:
        """Every problem (errors and warnings), the core's check in a thread."""
        try:
            request, problems, uploads = self._plan()
        except NoMatches:
            # A parameter row is being removed (its fields go first): read the form again
            # once the removal is done, rather than fail the worker and with it the app.
            self.recheck_soon()
            return
        if request is not None:
            problems += await asyncio.to_thread(validate_selection, request.assignments,
                                                uploads_scripts=uploads)
        if not self.is_attached:
            return  # the screen went (run or cancelled) while the check ran in its thread
        if problems:
            self.show(problems)
        else:
            self.show_none()
