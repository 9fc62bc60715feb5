"""Regular expressions from files fleetrun reads, matched with a time limit.

A saved command's ``pattern`` is written by whoever wrote the file and matched against
whatever is typed, as it is typed. Python's ``re`` backtracks without limit, so
``^(a|a)+$`` against ``aaa…ab`` would hold a CPU (and the composer's event loop) for
minutes. The ``regex`` package speaks the same syntax and gives up after a timeout, so a
check here takes at most :data:`MATCH_TIMEOUT`; a pattern that needs longer is reported as
too complex, never taken as a match or a mismatch.
"""

from __future__ import annotations

from functools import lru_cache

import regex

from core.errors import BadInputError, FleetrunError

MATCH_TIMEOUT = 0.05
"""Seconds one check may take: short enough to run on every keystroke."""

MATCH_TIMEOUT_TEXT = f"{MATCH_TIMEOUT * 1000:g} ms"


class PatternError(BadInputError, ValueError):
    """A pattern that does not compile; the message says why (without the pattern)."""


class PatternTooComplex(FleetrunError):
    """A match that did not finish within :data:`MATCH_TIMEOUT`."""


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """``pattern`` compiled (cached: the composer checks the same one on every keystroke).

    Raises:
        PatternError: it is not a valid regular expression.
    """
    try:
        return regex.compile(pattern)
    except (regex.error, ValueError, OverflowError, RecursionError) as exc:
        raise PatternError(str(exc) or type(exc).__name__) from None


def full_match(pattern: str, value: str) -> bool:
    """Whether ``pattern`` matches the whole of ``value``.

    Raises:
        PatternError: the pattern does not compile.
        PatternTooComplex: the match did not finish within :data:`MATCH_TIMEOUT`.
    """
    compiled = compile_pattern(pattern)
    try:
        return compiled.fullmatch(value, timeout=MATCH_TIMEOUT) is not None
    except TimeoutError:
        raise PatternTooComplex(
            f"gave up after {MATCH_TIMEOUT_TEXT}") from None
