"""The target query language: which machines a command goes to.

Used by the CLI's ``--target`` and the TUI's ``/`` filter. A query is parsed once into
compiled terms and then matched against many machines, so filtering a large fleet costs one
pass of cheap predicates.

Grammar (informal)::

    query  := term (WHITESPACE term)*          terms are ANDed; empty matches everything
    term   := ["!"] (text | field ":" value)   "!" negates the term
    value  := alt ("," alt)*                   alternatives are ORed

Fields: ``name`` (glob), ``tag`` (``K``, ``K=V``; V may be a glob), ``os``, ``kind``,
``health`` (a HealthStatus, or ``ok``/``bad``), ``location``/``loc`` (glob),
``subscription``/``sub`` (glob), ``scaleset`` (glob: the VM scale set a machine belongs to,
Uniform or Flexible; ``scaleset:*`` is every scale set member). Plain text is a
case-insensitive substring of the name or the id. All matching is case-insensitive.

Double quotes protect what they enclose from being read as syntax: whitespace, ``,``,
``:``, ``=``, a leading ``!``. Inside quotes ``\\"`` is a quote and ``\\\\`` a backslash.
Glob characters (``*``, ``?``, ``[``) keep their meaning inside quotes; write ``[*]`` for a
literal star.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from core.errors import BadInputError
from core.model import SCALE_SET_TAG, HealthStatus, Machine, MachineKind, OsType

__all__ = ["Query", "QueryError", "Term", "filter_machines", "parse_query"]

Predicate = Callable[[Machine], bool]

FIELDS = ("name", "tag", "os", "kind", "health", "location", "subscription", "scaleset")
_ALIASES = {"loc": "location", "sub": "subscription"}
_FIELDS_TEXT = ", ".join(FIELDS)

# Lower-cased HealthStatus values without separators, so "NotReady", "notready" and
# "not-ready" all name the same status.
_HEALTH = {status.value.lower(): status for status in HealthStatus}
_HEALTH_SHORTHANDS = ("ok", "bad")
_HEALTH_ALLOWED = ", ".join([*_HEALTH, *_HEALTH_SHORTHANDS])

# Characters that make a value need quotes when written back by ``describe``.
_NEEDS_QUOTES = re.compile(r'[\s,:="\\!]')


class QueryError(BadInputError, ValueError):
    """The query text is not valid; the message names the term and what is allowed."""


# -- tokenizing ---------------------------------------------------------------------------

# A word is a sequence of (text, quoted) segments. Syntax characters only count in unquoted
# segments, and an empty quoted segment ("") still makes a value non-empty.
_Segment = tuple[str, bool]
_Word = tuple[_Segment, ...]


def _tokenize(text: str) -> list[tuple[str, _Word]]:
    """Splits the query into terms at unquoted whitespace.

    Returns:
        (source text of the term, its segments) for each term, in order.

    Raises:
        QueryError: a quote is not closed.
    """
    terms: list[tuple[str, _Word]] = []
    segments: list[_Segment] = []
    plain: list[str] = []
    start = -1  # index where the current term began, -1 between terms
    i = 0
    n = len(text)

    def flush_plain() -> None:
        if plain:
            segments.append(("".join(plain), False))
            plain.clear()

    while i < n:
        ch = text[i]
        if ch.isspace():
            if start >= 0:
                flush_plain()
                terms.append((text[start:i], tuple(segments)))
                segments = []
                start = -1
            i += 1
            continue
        if start < 0:
            start = i
        if ch != '"':
            plain.append(ch)
            i += 1
            continue
        flush_plain()
        quoted: list[str] = []
        i += 1
        while i < n and text[i] != '"':
            if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                i += 1
            quoted.append(text[i])
            i += 1
        if i >= n:
            source = text[start:].strip()
            raise QueryError(
                f'unbalanced quote in {source!r}: close the value with a second " '
                '(inside quotes write \\" for a literal quote)'
            )
        segments.append(("".join(quoted), True))
        i += 1  # the closing quote
    if start >= 0:
        flush_plain()
        terms.append((text[start:], tuple(segments)))
    return terms


def _split(word: _Word, sep: str, maxsplit: int = -1) -> list[_Word]:
    """Splits ``word`` at unquoted occurrences of ``sep`` (a single character)."""
    parts: list[list[_Segment]] = [[]]
    splits = 0
    for text, quoted in word:
        if quoted or sep not in text or (maxsplit >= 0 and splits >= maxsplit):
            parts[-1].append((text, quoted))
            continue
        pieces = text.split(sep) if maxsplit < 0 else text.split(sep, maxsplit - splits)
        for k, piece in enumerate(pieces):
            if k:
                parts.append([])
                splits += 1
            if piece:
                parts[-1].append((piece, False))
    return [tuple(p) for p in parts]


def _text(word: _Word) -> str:
    return "".join(text for text, _ in word)


def _blank(word: _Word) -> bool:
    """True when nothing was written: no characters and no quotes (``""`` is not blank)."""
    return not any(text or quoted for text, quoted in word)


# -- terms --------------------------------------------------------------------------------


def _glob_regex(patterns: Iterable[str]) -> re.Pattern[str]:
    # One alternation for all the alternatives: a single C-level match per machine.
    return re.compile("|".join(fnmatch.translate(p) for p in patterns), re.IGNORECASE)


def _quote(value: str) -> str:
    if value and not _NEEDS_QUOTES.search(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class Term:
    """One compiled term.

    Attributes:
        field: the canonical field name (see ``FIELDS``), or ``"text"`` for plain text.
        values: the alternatives, normalized (enum values lower-cased). For ``tag`` they
            are tag names, or with ``key`` set, the value globs for that tag.
        negated: whether the term was written with a leading ``!``.
        key: for ``tag:K=V``, the tag name K; None otherwise.
    """

    field: str
    values: tuple[str, ...]
    negated: bool = False
    key: str | None = None
    _predicate: Predicate = dataclasses.field(default=lambda _m: True, compare=False, repr=False)
    """The compiled test, negation included (see ``_negate``)."""

    def matches(self, machine: Machine) -> bool:
        """Whether the machine satisfies this term (negation applied)."""
        return self._predicate(machine)

    def describe(self) -> str:
        """The term in normalized form; parsing it again gives an equal term."""
        bang = "!" if self.negated else ""
        values = ",".join(_quote(v) for v in self.values)
        if self.field == "text":
            return bang + values
        if self.key is not None:
            return f"{bang}{self.field}:{_quote(self.key)}={values}"
        return f"{bang}{self.field}:{values}"


def _text_term(values: list[str]) -> Predicate:
    needles = tuple(v.lower() for v in values)
    if len(needles) == 1:
        # The common case, without a generator per machine: filtering is per keystroke.
        needle = needles[0]
        return lambda m: needle in m.name.lower() or needle in m.id.lower()

    def predicate(m: Machine) -> bool:
        name = m.name.lower()
        ident = m.id.lower()
        return any(n in name or n in ident for n in needles)

    return predicate


def _glob_term(attr: str, values: list[str]) -> Predicate:
    match = _glob_regex(values).match
    if attr == "name":
        return lambda m: match(m.name) is not None
    if attr == "location":
        return lambda m: match(m.location) is not None
    if attr == "scaleset":
        def in_scale_set(m: Machine) -> bool:
            found = m.tags.get(SCALE_SET_TAG)
            return found is not None and match(found) is not None
        return in_scale_set
    return lambda m: match(m.subscription) is not None


def _tag_term(source: str, value: _Word) -> tuple[str | None, list[str], Predicate]:
    """``tag:K`` (present), ``tag:K1,K2`` (any present) or ``tag:K=V1,V2`` (value globs).

    Returns:
        (the tag name when values are given, the alternatives, the predicate).
    """
    if _blank(value):
        raise QueryError(f"empty value in {source!r}; write tag:NAME or tag:NAME=VALUE")
    key_word, *rest = _split(value, "=", maxsplit=1)
    if not rest:
        keys = _alternatives(source, key_word, hint="write tag:NAME or tag:NAME1,NAME2")
        lowered = [(k, k.lower()) for k in keys]
        return None, keys, lambda m: any(_tag_value(m, k, kl) is not None for k, kl in lowered)

    if _blank(key_word):
        raise QueryError(f"empty tag name in {source!r}; write tag:NAME=VALUE or tag:NAME")
    key = _text(key_word)
    vals = _alternatives(
        source,
        rest[0],
        hint=f'write tag:{key}=VALUE, tag:{key}="" for an empty value, or tag:{key} for any',
    )
    key_lower = key.lower()
    match = _glob_regex(vals).match

    def has_value(m: Machine) -> bool:
        found = _tag_value(m, key, key_lower)
        return found is not None and match(found) is not None

    return key, vals, has_value


def _tag_value(machine: Machine, key: str, key_lower: str) -> str | None:
    # Azure tag names are case-insensitive; try the exact key first, it is the common case.
    tags = machine.tags
    found = tags.get(key)
    if found is not None:
        return found
    for k, v in tags.items():
        if k.lower() == key_lower:
            return v
    return None


def _enum_term(fname: str, values: list[str], allowed: Sequence[str]) -> list[str]:
    chosen: list[str] = []
    for v in values:
        key = v.lower()
        if key not in allowed:
            article = "an" if fname[0] in "aeiou" else "a"
            raise QueryError(
                f"{fname}:{v!r} is not {article} {fname}; allowed: {', '.join(allowed)}"
            )
        chosen.append(key)
    return chosen


def _os_term(wanted: frozenset[str]) -> Predicate:
    return lambda m: m.os.value in wanted


def _kind_term(wanted: frozenset[str]) -> Predicate:
    return lambda m: m.kind.value in wanted


def _health_term(values: list[str]) -> tuple[list[str], Predicate]:
    wanted: set[HealthStatus] = set()
    chosen: list[str] = []
    for v in values:
        key = v.lower().replace("-", "").replace("_", "")
        if key == "ok":
            wanted.update(s for s in HealthStatus if s.runnable)
        elif key == "bad":
            wanted.update(s for s in HealthStatus if not s.runnable)
        elif key in _HEALTH:
            wanted.add(_HEALTH[key])
        else:
            raise QueryError(
                f"health:{v!r} is not a health status; allowed: {_HEALTH_ALLOWED} "
                "(ok = runnable, bad = not runnable)"
            )
        chosen.append(key)
    statuses = frozenset(wanted)
    return chosen, lambda m: m.health.status in statuses


def _alternatives(source: str, value: _Word, *, hint: str = "") -> list[str]:
    """The comma-separated alternatives of a value; none may be empty."""
    alts = _split(value, ",")
    if len(alts) == 1 and _blank(alts[0]):
        raise QueryError(f"empty value in {source!r}; {hint or 'write a value after the colon'}")
    if any(_blank(a) for a in alts):
        raise QueryError(
            f"empty alternative in {source!r}; separate alternatives with single commas, "
            "e.g. os:linux,windows"
        )
    return [_text(a) for a in alts]


_OS_ALLOWED = tuple(o.value for o in OsType)
_KIND_ALLOWED = tuple(k.value for k in MachineKind)


def _negate(predicate: Predicate) -> Predicate:
    return lambda m: not predicate(m)


def _parse_term(source: str, word: _Word) -> Term:
    """Parses one term, with the negation folded into its predicate."""
    term = _parse_positive(source, word)
    if not term.negated:
        return term
    return dataclasses.replace(term, _predicate=_negate(term._predicate))


def _parse_positive(source: str, word: _Word) -> Term:
    negated = False
    first_text, first_quoted = word[0]
    if not first_quoted and first_text.startswith("!"):
        negated = True
        rest = first_text[1:]
        word = ((rest, False), *word[1:]) if rest else word[1:]
        if _blank(word):
            raise QueryError(
                f"lone '!' in {source!r}: put it directly before the term it negates, "
                "e.g. !web or !tag:env=prod"
            )
        if not word[0][1] and word[0][0].startswith("!"):
            raise QueryError(f"double negation in {source!r}: use a single '!'")

    head, *tail = _split(word, ":", maxsplit=1)
    if not tail:
        values = _alternatives(source, word)
        if "" in values:
            # "" would be a substring of everything: almost surely not what was meant.
            raise QueryError(f"empty text in {source!r}; write some text to find in names or ids")
        return Term("text", tuple(values), negated, None, _text_term(values))

    raw_field = _text(head)
    fname = _ALIASES.get(raw_field.lower(), raw_field.lower())
    if fname not in FIELDS:
        bang = "!" if negated else ""
        as_text = bang + _quote(_text(word))
        raise QueryError(
            f"unknown field {raw_field!r} in {source!r}; fields: {_FIELDS_TEXT} "
            f"(aliases: loc, sub); to search for text with a colon, quote it: {as_text}"
        )
    value = tail[0]
    if fname == "tag":
        key, tag_values, tag_predicate = _tag_term(source, value)
        return Term("tag", tuple(tag_values), negated, key, tag_predicate)
    alts = _alternatives(source, value)
    if fname in ("name", "location", "subscription", "scaleset"):
        return Term(fname, tuple(alts), negated, None, _glob_term(fname, alts))
    if fname == "os":
        chosen = _enum_term("os", alts, _OS_ALLOWED)
        return Term(fname, tuple(chosen), negated, None, _os_term(frozenset(chosen)))
    if fname == "kind":
        chosen = _enum_term("kind", alts, _KIND_ALLOWED)
        return Term(fname, tuple(chosen), negated, None, _kind_term(frozenset(chosen)))
    chosen, predicate = _health_term(alts)
    return Term(fname, tuple(chosen), negated, None, predicate)


# -- queries ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: every term must match.

    Attributes:
        terms: the compiled terms, in the order written.
        text: the text the query was parsed from.
    """

    terms: tuple[Term, ...] = ()
    text: str = dataclasses.field(default="", compare=False)

    def matches(self, machine: Machine) -> bool:
        """Whether the machine satisfies every term (an empty query matches all)."""
        for term in self.terms:
            if not term._predicate(machine):
                return False
        return True

    def describe(self) -> str:
        """The normalized query text, e.g. ``name:web-* !tag:env=prod os:linux``.

        Field aliases are spelled out, enum values lower-cased, and values quoted only
        where needed; parsing the result gives an equal query. Empty for the empty query.
        """
        return " ".join(term.describe() for term in self.terms)

    def __bool__(self) -> bool:
        """False for the empty query, which selects everything."""
        return bool(self.terms)

    def __str__(self) -> str:
        return self.describe()


def parse_query(text: str) -> Query:
    """Parses query text once, for matching many machines.

    Args:
        text: the query, e.g. ``web !tag:env=prod os:linux health:ok``.

    Returns:
        The compiled query.

    Raises:
        QueryError: the text is invalid; the message names the term and what is allowed.
    """
    terms = tuple(_parse_term(source, word) for source, word in _tokenize(text))
    return Query(terms, text)


def filter_machines(machines: Iterable[Machine], text: str | Query) -> list[Machine]:
    """The machines that match a query, in their original order.

    Args:
        machines: the fleet.
        text: query text, or an already parsed query.

    Raises:
        QueryError: the query text is invalid.
    """
    query = parse_query(text) if isinstance(text, str) else text
    predicates = [term._predicate for term in query.terms]
    if not predicates:
        return list(machines)
    # Term by term over a shrinking list: each pass is one tight comprehension, and the
    # later terms only see what the earlier ones kept. Order is preserved.
    selected = [m for m in machines if predicates[0](m)]
    for predicate in predicates[1:]:
        selected = [m for m in selected if predicate(m)]
    return selected
