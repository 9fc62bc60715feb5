"""Which past runs to list: a text search and a date range, as one SQL condition on the journal.

The journal (:mod:`core.journal_store`) applies it; ``fleetrun history --grep/--since/--until``
and the history screen's ``/`` and date keys build it. The text matches, case-insensitively
(ASCII), as a substring of the run id, the saved command's name or hash, any command's script,
the target, the fleet, the run's status, and any machine's name, id or state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.errors import BadInputError


class RunFilterError(BadInputError, ValueError):
    """A date bound that is not one; the message names the field and what is allowed."""


DATE_RULE = "YYYY-MM-DD, YYYY-MM-DDTHH:MM, today, yesterday, or an age such as 7d or 12h"

_AGE = re.compile(r"(\d{1,5})([dh])")


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Runs to keep: text anywhere a person would look for it, created in [since, until)."""

    text: str = ""
    since: datetime | None = None
    """Inclusive; aware."""
    until: datetime | None = None
    """Exclusive; aware."""

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and self.since is None and self.until is None

    def describe(self) -> str:
        """What it keeps, for a status line: ``'disk' · since 2026-12-01 00:00``."""
        parts = [repr(self.text.strip())] if self.text.strip() else []
        if self.since is not None:
            parts.append(f"since {self.since.astimezone():%Y-%m-%d %H:%M}")
        if self.until is not None:
            parts.append(f"until {self.until.astimezone():%Y-%m-%d %H:%M}")
        return " · ".join(parts)

    def sql(self) -> tuple[str, list[Any]]:
        """A condition on the ``runs`` table (``TRUE`` when it keeps everything), and its
        parameters in order."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.since is not None:
            clauses.append("runs.created >= ?")
            params.append(_utc_text(self.since))
        if self.until is not None:
            clauses.append("runs.created < ?")
            params.append(_utc_text(self.until))
        text = self.text.strip()
        if text:
            like = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
            clauses.append(_TEXT_MATCH)
            params += [like] * _TEXT_MATCH.count("?")
        return (" AND ".join(clauses) or "TRUE"), params


_TEXT_MATCH = r"""(
    runs.run_id LIKE ? ESCAPE '\' OR runs.saved_command LIKE ? ESCAPE '\'
    OR runs.saved_hash LIKE ? ESCAPE '\' OR runs.target LIKE ? ESCAPE '\'
    OR runs.fleet LIKE ? ESCAPE '\' OR runs.status LIKE ? ESCAPE '\'
    OR EXISTS (SELECT 1 FROM json_each(runs.commands_json) AS c
               WHERE json_extract(c.value, '$.script') LIKE ? ESCAPE '\')
    OR EXISTS (SELECT 1 FROM machine_runs AS m WHERE m.run_id = runs.run_id
               AND (m.name LIKE ? ESCAPE '\' OR m.machine_id LIKE ? ESCAPE '\'
                    OR m.state LIKE ? ESCAPE '\'))
)"""


def parse_bound(text: str, *, field: str, now: datetime, end: bool = False) -> datetime:
    """A date bound as a person types it, in local time; ``end`` makes a bare date include
    that whole day (``--until 2026-12-01`` keeps runs of the 1st).

    Raises:
        RunFilterError: it is none of :data:`DATE_RULE` (the message names ``field``).
    """
    given = text.strip().lower()
    local_now = now.astimezone()
    if given in ("today", "yesterday"):
        day = local_now.date() - timedelta(days=0 if given == "today" else 1)
        return _day_start(day + timedelta(days=1 if end else 0))
    age = _AGE.fullmatch(given)
    if age:
        amount, unit = int(age.group(1)), age.group(2)
        return now - (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    try:
        if len(given) == 10:
            day = date.fromisoformat(given)
            return _day_start(day + timedelta(days=1 if end else 0))
        moment = datetime.fromisoformat(given)
    except ValueError:
        raise RunFilterError(f"{field}: {text!r} is not a date; use {DATE_RULE}") from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def last_days(days: int, now: datetime) -> RunFilter:
    """Runs of the last ``days`` local calendar days, today included (1 = today)."""
    first = now.astimezone().date() - timedelta(days=days - 1)
    return RunFilter(since=_day_start(first))


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time()).astimezone()


def _utc_text(value: datetime) -> str:
    # The journal's own format (fixed width, UTC), so text order is time order.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_search(text: str, now: datetime) -> RunFilter:
    """What a person types in the history screen's search box: words to find, with
    ``since:WHEN`` and ``until:WHEN`` (any of :data:`DATE_RULE`) bounding the dates.

    Raises:
        RunFilterError: a ``since:``/``until:`` value is not a date.
    """
    words: list[str] = []
    since = until = None
    for word in text.split():
        key, _, value = word.partition(":")
        if key.lower() == "since" and value:
            since = parse_bound(value, field="since", now=now)
        elif key.lower() == "until" and value:
            until = parse_bound(value, field="until", now=now, end=True)
        else:
            words.append(word)
    return RunFilter(text=" ".join(words), since=since, until=until)
