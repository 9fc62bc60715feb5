"""Readers for a fleet file's fields: each checks one value and names it when it is wrong.

Every refusal is one line, ``<dotted.path>: <what is allowed>``, raised as
:class:`FleetFileError` (``machines[3].kind: 'foo' is not allowed; allowed: arc, vm``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.field_names import shown_key
from core.terminal_text import UNSAFE_CHARACTERS

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB)?\s*$")
_SIZE_UNIT = {None: 1, "B": 1, "KiB": 1024, "MiB": 1024 * 1024}
_FREE_TEXT = frozenset({"output", "error"})
"""A simulated machine's output and error text: what it prints may hold anything."""


class FleetFileError(ValueError):
    """A fleet file that cannot be used; the message names the field and what is allowed."""


def only(raw: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise FleetFileError(
            f"{where}{shown_key(unknown[0])}: unknown key; allowed here: "
            f"{', '.join(sorted(allowed))}"
        )


def table(raw: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise FleetFileError(f"{where}{key}: must be a table")
    return value


def text(raw: Mapping[str, Any], key: str, where: str, default: str | None) -> str:
    if key not in raw:
        if default is None:
            raise FleetFileError(f"{where}{key}: required")
        return default
    value = raw[key]
    if not isinstance(value, str) or (default is None and not value.strip()):
        raise FleetFileError(f"{where}{key}: a non-empty string")
    if key not in _FREE_TEXT:
        printable(value, where + key)
    return value


def printable(value: str, where: str) -> None:
    """Names, ids and tags end up in URLs, headers and terminals: no control characters."""
    found = UNSAFE_CHARACTERS.search(value)
    if found is not None:
        raise FleetFileError(f"{where}: control character {found.group()!r} at position "
                             f"{found.start()} is not allowed; use printable text")


def choice(value: str, where: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise FleetFileError(f"{where}: {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def integer(raw: Mapping[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FleetFileError(f"{where}{key}: an integer from {low} to {high}")
    return value


def ratio(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key, 0.0)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= 1:
        raise FleetFileError(f"{where}{key}: a share from 0 to 1")
    return float(value)


def duration(
    raw: Mapping[str, Any], key: str, where: str, default: float | None, minimum: float = 0.0
) -> float:
    if key not in raw:
        if default is None:
            raise FleetFileError(f"{where}{key}: required")
        return default
    value = parse_duration(raw[key], where + key)
    if value < minimum:
        raise FleetFileError(f"{where}{key}: at least {minimum:g} s")
    return value


def size(raw: Mapping[str, Any], key: str, where: str, ceiling: int) -> int | None:
    """A byte count from 1 to ``ceiling``: an integer or a string like '64KiB', '4MiB'."""
    if key not in raw:
        return None
    value = raw[key]
    count: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        count = int(match.group(1)) * _SIZE_UNIT[match.group(2)]
    if count is None or not 1 <= count <= ceiling:
        raise FleetFileError(
            f"{where}{key}: {value!r} is not allowed; a size from 1 byte to "
            f"{ceiling // (1024 * 1024)}MiB, in bytes or a string like '64KiB', '4MiB'"
        )
    return count


def parse_duration(value: object, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT[match.group(2)]
    raise FleetFileError(
        f"{where}: {value!r} is not a duration; use seconds or a string like '250ms', '2s', '5m'"
    )
