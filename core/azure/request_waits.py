"""Who waits for a token to send a request, and whether a 429 holds their scope.

The hook through which a backend shows a machine Queued or Throttled while its start request
waits: :meth:`core.azure.arm.ArmClient.request` reports to a caller that asked
(``waiting=``) that its request is Queued for a token of its (scope, kind), Throttled while
a 429's ``Retry-After`` holds that scope (its own 429 or another request's), and sent
(None) once it has its token. Only callers that ask are tracked: polls and deletes never.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from core.azure.scope import ThrottleScope
from core.model import Waiting

WaitReport = Callable[[Waiting | None], None]
"""Told each change of one request's wait (None: it has its token and is being sent)."""

_Key = tuple[ThrottleScope, str]


class RequestWaits:
    """Per (scope, kind): the requests waiting for a token, and until when a 429 blocks it."""

    def __init__(self) -> None:
        self._waiting: dict[_Key, set[WaitReport]] = {}
        self._blocked_until: dict[_Key, float] = {}

    def enter(self, scope: ThrottleScope, kind: str, report: WaitReport) -> None:
        """A request starts waiting for a token."""
        key = (scope, kind)
        self._waiting.setdefault(key, set()).add(report)
        now = asyncio.get_running_loop().time()
        report(Waiting.THROTTLED if self._blocked_until.get(key, 0.0) > now else Waiting.QUEUED)

    def leave(self, scope: ThrottleScope, kind: str, report: WaitReport) -> None:
        """The request has its token (or gave up waiting)."""
        key = (scope, kind)
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting.discard(report)
            if not waiting:
                del self._waiting[key]
        report(None)

    def throttled(self, scope: ThrottleScope, kind: str, seconds: float) -> None:
        """A 429 blocks (scope, kind) for ``seconds``: who waits there is Throttled until
        then, and Queued again after (if still waiting: the bucket may still be empty)."""
        key = (scope, kind)
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if until <= self._blocked_until.get(key, 0.0):
            return
        self._blocked_until[key] = until
        for report in list(self._waiting.get(key, ())):
            report(Waiting.THROTTLED)
        loop.call_at(until, self._unblocked, key, until)

    def _unblocked(self, key: _Key, until: float) -> None:
        if self._blocked_until.get(key) != until:
            return  # a later 429 holds it longer
        del self._blocked_until[key]
        for report in list(self._waiting.get(key, ())):
            report(Waiting.QUEUED)
