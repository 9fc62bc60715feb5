"""Output "modulo noise": volatile text replaced by placeholders before outputs are grouped.

``uptime`` or ``systemctl status`` print a clock, a PID, an address or the machine's own
name, so no two machines print the same bytes and grouping says nothing. With the noise
normalized, machines that only differ in such values group together. The TUI's groups view
(``n``) and ``fleetrun run --group-noise`` use the same function.

What counts as noise (each becomes a placeholder no pattern matches, so normalizing twice
changes nothing): the machine's own name, short host name and computer name (a scale set
instance ``queue-ss/0`` calls itself ``queue-ss000000``: :mod:`core.scale_set_names`)
(``<host>``), timestamps (ISO
8601 with an optional weekday and zone, syslog ``Dec  7 02:03:16``, ``HH:MM:SS``,
``HH:MM``: ``<time>``), uptimes and durations (``up 3 days,  4:05``, ``3 days``, ``12ms``,
``1.5s``, ``2min``: ``<dur>``), load averages (``<load>``), PIDs (``[1234]``, ``pid 1234``,
``Main PID: 1234``, ``├─1234``: ``<pid>``), IPv4 and IPv6 addresses (``<ip>``), UUIDs and
hex ids of 8 or more hex digits with at least one digit and one letter (``<hex>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.model import Machine
from core.scale_set_names import computer_names

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_WEEKDAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_UNITS = (r"(?:ms|us|µs|ns|s|sec|secs|seconds?|m|min|mins|minutes?|h|hrs?|hours?|d|days?"
          r"|weeks?|months?|years?)")

# In order: a later pattern must not see what an earlier one already replaced.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # uptime: "up 3 days,  4:05," / "up 13:45," / "up 5 min,"
    (re.compile(r"\bup\s+(?:\d+\s+days?,\s*)?(?:\d{1,2}:\d{2}|\d+\s+min)\b"), "up <dur>"),
    (re.compile(r"\bload averages?:\s*\d+[.,]\d+,?\s+\d+[.,]\d+,?\s+\d+[.,]\d+"),
     "load average: <load>"),
    (re.compile(rf"(?:\b{_WEEKDAY},?\s+)?\b\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]\d{{2}}:\d{{2}}"
                r"(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2}|\s+[A-Z]{2,5}\b)?)?"), "<time>"),
    (re.compile(rf"\b{_MONTH}\s+\d{{1,2}}\s+\d{{2}}:\d{{2}}:\d{{2}}\b"), "<time>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
                r"-[0-9a-fA-F]{12}\b"), "<hex>"),
    # IPv6: compressed (with "::") or all eight groups; before clock times ("12:34").
    (re.compile(r"(?<![\w:])(?=[0-9a-fA-F:]*::)(?:[0-9a-fA-F]{1,4}:|:){1,7}(?:[0-9a-fA-F]{1,4}"
                r"|:)(?![\w:])"), "<ip>"),
    (re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"), "<ip>"),
    (re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)"), "<ip>"),
    (re.compile(r"\b\d{1,2}:[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?\b"), "<time>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"(?i)\b(pid)(\s*[:=]?\s*)\d+\b"), r"\1\2<pid>"),
    (re.compile(r"\[\d+\]"), "[<pid>]"),
    (re.compile(r"([├└]─)\d+\b"), r"\1<pid>"),
    (re.compile(rf"\b\d+(?:\.\d+)?{_UNITS}\b"), "<dur>"),
    (re.compile(r"\b\d+(?:\.\d+)?\s+(?:ms|secs?|seconds?|mins?|minutes?|hours?|days?|weeks?"
                r"|months?|years?)\b"), "<dur>"),
    # "1min 3.5s", "3 days 4h": one duration, however many units it was written in.
    (re.compile(r"<dur>(?:,?\s*<dur>)+"), "<dur>"),
)


def host_names(name: str) -> tuple[str, ...]:
    """A machine's own names as it may print them: the name and its short host name."""
    short = name.split(".", 1)[0]
    return (name, short) if short and short != name else (name,)


def machine_names(machine: Machine) -> tuple[str, ...]:
    """Every name ``machine`` may print as its own: :func:`host_names` of its name and of its
    computer name (given by the inventory, or derived for a scale set's instance)."""
    names = [*host_names(machine.name)]
    for computer in computer_names(machine):
        names += host_names(computer)
    return tuple(dict.fromkeys(names))


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first, so the full name wins over its short form; never inside a placeholder
    # or a longer name.
    wanted = sorted({n for n in names if n.strip()}, key=len, reverse=True)
    if not wanted:
        return None
    return re.compile(r"(?<![\w<.-])(?:" + "|".join(re.escape(n) for n in wanted)
                      + r")(?![\w>-]|\.\w)", re.IGNORECASE)


def normalize_noise(text: str, names: Iterable[str] = ()) -> str:
    """``text`` with its volatile parts as placeholders (see the module); idempotent.

    ``names`` are the machine's own names (:func:`host_names`), replaced first so that a
    name holding digits or hex is not taken apart by the other rules.
    """
    pattern = _names_pattern(names)
    if pattern is not None:
        text = pattern.sub("<host>", text)
    for rule, replacement in _RULES:
        text = rule.sub(replacement, text)
    return text
