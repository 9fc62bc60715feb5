"""Where an asyncio event loop's time goes: the CPU of each callback, summed by kind.

Installed in a process for a measured window (:meth:`LoopTime.start`, :meth:`LoopTime.stop`),
it wraps ``asyncio.Handle._run`` (every callback and task step the loop runs goes through
it) and adds each one's thread CPU time to a kind named after what ran: a Textual timer by
its callback (``Screen._on_timer_update`` is a frame composed and written), a task by its
coroutine (``FanOut._drive`` is a machine's events), a plain callback by its name. Also
counted: the longest single callback, which is the longest a key can wait behind one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _kind(handle: asyncio.Handle) -> str:
    callback: Any = handle._callback  # type: ignore[attr-defined]
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro: Any = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if frame is not None and frame.f_code.co_name == "_run_timer":
            timer_callback = getattr(frame.f_locals.get("self"), "_callback", None)
            return "timer " + getattr(timer_callback, "__qualname__", repr(timer_callback))
        return "task " + str(getattr(coro, "__qualname__", coro))
    inner = getattr(callback, "func", callback)  # functools.partial
    return str(getattr(inner, "__qualname__", repr(inner)))


@dataclass
class LoopTime:
    """CPU seconds per kind of callback, and the longest single callback."""

    seconds: dict[str, float] = field(default_factory=dict)
    longest: tuple[float, str] = (0.0, "")
    wall: float = 0.0
    _original: Callable[[asyncio.Handle], None] | None = None
    _started: float = 0.0

    def start(self) -> None:
        original = asyncio.Handle._run
        self._original = original
        self._started = time.perf_counter()
        seconds = self.seconds

        def timed(handle: asyncio.Handle) -> None:
            before = time.thread_time()
            original(handle)
            took = time.thread_time() - before
            kind = _kind(handle)
            seconds[kind] = seconds.get(kind, 0.0) + took
            if took > self.longest[0]:
                self.longest = (took, kind)

        asyncio.Handle._run = timed  # type: ignore[method-assign,assignment]

    def stop(self) -> None:
        if self._original is not None:
            asyncio.Handle._run = self._original  # type: ignore[method-assign,assignment]
            self._original = None
            self.wall = time.perf_counter() - self._started

    def busy(self) -> float:
        """The share of the window the loop's thread spent running callbacks (CPU)."""
        return sum(self.seconds.values()) / self.wall if self.wall else 0.0

    def top(self, count: int) -> list[tuple[str, float]]:
        """The ``count`` costliest kinds, with their share of the window's wall time."""
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])[:count]
        return [(kind, spent / self.wall if self.wall else 0.0) for kind, spent in ranked]
