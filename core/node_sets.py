"""Node sets as ClusterShell writes them: ``web[01-20].prod,db-[1-3]`` expanded and folded.

The syntax (ClusterShell's, which pdsh's hostlists are a subset of):

- ``prefix[ranges]suffix``: ranges are a comma list of ``N``, ``A-B`` and ``A-B/STEP``; any
  number of bracket groups make a cartesian product (``a[1-2]b[3-4]``).
- Zero padding comes from the written width of the lower bound (``[09-11]`` is 09, 10,
  11); a padded lower bound needs an upper bound of the same width and an unpadded one an
  upper bound without leading zeros (``n[01-100]`` is an error, as in ClusterShell).
  ``n9`` and ``n09`` are different names.
- Terms are joined by operators read left to right with no precedence: ``,`` union,
  ``!`` difference, ``&`` intersection, ``^`` symmetric difference.

The result is ClusterShell's: without duplicates, sorted by pattern and then numerically
(``n9`` before ``n09`` before ``n10``). Groups (``@name``) are not supported: fleetrun has no
groups.conf. Names are strings here; what a name means (``user@host:port``) is the caller's.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.errors import BadInputError

MAX_NODES = 10_000
"""The most names one node set may expand to: more is almost surely a typo (a missing
digit in a bound), and would open that many connections."""

OPERATORS = ",!&^"
NAME_CHARACTERS = "letters, digits, '.', '-', '_', '@', ':'"
_NAME_CHARACTER = re.compile(r"[A-Za-z0-9._@:-]")
_DIGIT_RUNS = re.compile(r"(\d+)")
_FOLDABLE = re.compile(r"[A-Za-z0-9._@:-]+")


class NodeSetError(BadInputError, ValueError):
    """A node set that cannot be read; the message names the character and what is allowed."""


@dataclass(frozen=True, slots=True)
class _Term:
    """One term between operators: literal parts and the values of each bracket group."""

    parts: tuple[str | tuple[str, ...], ...]

    def size(self) -> int:
        size = 1
        for part in self.parts:
            if isinstance(part, tuple):
                size *= len(part)
        return size

    def names(self) -> list[str]:
        choices = [(part,) if isinstance(part, str) else part for part in self.parts]
        return ["".join(combination) for combination in itertools.product(*choices)]


def expand(text: str) -> list[str]:
    """Every name of a node set, without duplicates, in ClusterShell's order.

    Raises:
        NodeSetError: the text is not a node set, or it has more than :data:`MAX_NODES`
            names.
    """
    result: dict[str, None] = {}
    operator = ","
    for term, next_operator in _Reader(text).terms():
        names = dict.fromkeys(term.names())
        if operator == ",":
            result.update(names)
        elif operator == "!":
            result = {n: None for n in result if n not in names}
        elif operator == "&":
            result = {n: None for n in result if n in names}
        else:
            result = {n: None for n in itertools.chain(result, names)
                      if (n in result) != (n in names)}
        if len(result) > MAX_NODES:
            raise NodeSetError(f"{text!r}: more than {MAX_NODES} names; "
                               "split the set, or check the ranges' bounds")
        operator = next_operator
    return sorted(result, key=sort_key)


def sort_key(name: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """ClusterShell's order: by pattern (digits taken out), then each number by value and
    then by written width (``9`` < ``09`` < ``10``)."""
    pieces = _DIGIT_RUNS.split(name)
    numbers = tuple((int(d), len(d)) for d in pieces[1::2])
    return "%s".join(pieces[::2]), numbers


class _Reader:
    """Reads a node set's text into terms, with the position of every mistake."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0

    def fail(self, at: int, what: str) -> NodeSetError:
        return NodeSetError(f"{self.text!r}: at character {at + 1}: {what}")

    def terms(self) -> Iterable[tuple[_Term, str]]:
        """Each term with the operator that follows it (',' after the last)."""
        if not self.text.strip():
            raise NodeSetError("empty node set: give host names, e.g. 'web[01-20],db1'")
        while True:
            term = self.term()
            if self.at == len(self.text):
                yield term, ","
                return
            operator = self.text[self.at]
            self.at += 1
            if self.at == len(self.text):
                raise self.fail(self.at - 1, f"nothing after {operator!r}; remove it or add a "
                                "name after it")
            yield term, operator

    def term(self) -> _Term:
        start = self.at
        parts: list[str | tuple[str, ...]] = []
        literal: list[str] = []
        size = 1
        while self.at < len(self.text) and self.text[self.at] not in OPERATORS:
            char = self.text[self.at]
            if char == "[":
                parts.append("".join(literal))
                literal = []
                values = self.brackets()
                size *= len(values)
                if size > MAX_NODES:
                    raise self.fail(start, f"this term has more than {MAX_NODES} names; "
                                    "check the ranges' bounds")
                parts.append(values)
                continue
            if char == "]":
                raise self.fail(self.at, "']' without '['")
            if char == "@" and self.at == start:
                raise self.fail(self.at, "groups (@name) are not supported; list the hosts, "
                                "or use user@host for a login name")
            if char.isspace():
                raise self.fail(self.at, "a space; separate names with ',' (and quote the "
                                "set for the shell)")
            if not _NAME_CHARACTER.fullmatch(char):
                raise self.fail(self.at, f"{char!r} is not allowed in a name; use "
                                f"{NAME_CHARACTERS}, [ranges] and the operators , ! & ^")
            literal.append(char)
            self.at += 1
        if self.at == start:
            if start == 0:
                raise self.fail(start, "the set starts with an operator; a name comes first")
            raise self.fail(start, f"{self.text[start - 1]!r} is followed by no name")
        parts.append("".join(literal))
        return _Term(tuple(p for p in parts if p != ""))

    def brackets(self) -> tuple[str, ...]:
        """The values of ``[...]`` at the reader's position, which it moves past ``]``."""
        opening = self.at
        close = self.text.find("]", opening)
        nested = self.text.find("[", opening + 1)
        if close < 0:
            raise self.fail(opening, "'[' is never closed; add ']'")
        if 0 <= nested < close:
            raise self.fail(nested, "'[' inside brackets; brackets do not nest")
        inside = self.text[opening + 1:close]
        if not inside:
            raise self.fail(opening, "empty brackets; write ranges such as [1-3,5]")
        values: dict[str, None] = {}
        offset = opening + 1
        for item in inside.split(","):
            for value in self.range_values(item, offset):
                values[value] = None
                if len(values) > MAX_NODES:
                    raise self.fail(offset, f"more than {MAX_NODES} values")
            offset += len(item) + 1
        self.at = close + 1
        return tuple(values)

    def range_values(self, item: str, at: int) -> Sequence[str]:
        """The values of one ``N``, ``A-B`` or ``A-B/STEP``, as written (padded)."""
        allowed = "ranges are N, A-B or A-B/STEP of digits, comma separated"
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?:/(\d+))?)?", item)
        if not item:
            raise self.fail(at, f"an empty range; {allowed}")
        if match is None:
            bad = next((i for i, c in enumerate(item) if not (c.isdigit() or c in "-/")), 0)
            raise self.fail(at + bad, f"{item!r} is not a range; {allowed}")
        low, high, step_text = match.groups()
        if high is None:
            return (low,)
        padding = len(low) if len(low) > 1 and low.startswith("0") else 0
        if (padding and len(high) != padding) or (
                not padding and len(high) > 1 and high.startswith("0")):
            raise self.fail(at, f"{item!r}: padding length mismatch; both bounds need the "
                            "same number of digits when the lower one is zero-padded "
                            "(e.g. 01-99), and no leading zero otherwise")
        first, last = int(low), int(high)
        step = int(step_text) if step_text is not None else 1
        if first > last:
            raise self.fail(at, f"{item!r} goes down; write it low-high ({high}-{low})")
        if step == 0:
            raise self.fail(at, f"{item!r}: a step of 0; use 1 or more")
        if (last - first) // step + 1 > MAX_NODES:
            raise self.fail(at, f"{item!r} has more than {MAX_NODES} values")
        return [str(n).zfill(padding) for n in range(first, last + 1, step)]


def fold(names: Iterable[str]) -> str:
    """The compact form of some names, as ClusterShell's ``nodeset -f`` writes it.

    Names with the same pattern (their text with the numbers taken out) share one bracketed
    form; consecutive numbers of the same padding make ``a-b``; several dimensions merge
    where they can (``dc1n1 dc1n2 dc2n1 dc2n2`` is ``dc[1-2]n[1-2]``). ``expand`` of the
    result gives the names back.
    """
    by_pattern: dict[str, set[tuple[str, ...]]] = {}
    for name in set(names):
        pieces = _DIGIT_RUNS.split(name)
        by_pattern.setdefault("%s".join(pieces[::2]), set()).add(tuple(pieces[1::2]))
    folded: list[tuple[tuple[str, tuple[tuple[int, int], ...]], str]] = []
    for pattern, vectors in by_pattern.items():
        texts = pattern.split("%s")
        for row in _fold_vectors(sorted(vectors, key=_vector_key)):
            written = texts[0] + "".join(
                (values if "," not in values and "-" not in values else f"[{values}]") + text
                for values, text in zip(row, texts[1:], strict=True))
            first = tuple(_number_key(v.split(",")[0].split("-")[0]) for v in row)
            folded.append(((pattern, first), written))
    return ",".join(written for _, written in sorted(folded))


def _number_key(value: str) -> tuple[int, int]:
    return int(value), len(value)


def _vector_key(vector: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    return tuple(_number_key(v) for v in vector)


def _fold_vectors(vectors: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Rows of folded ranges (one string per dimension) covering exactly ``vectors``.

    The last dimension folds per prefix; prefixes whose folded rest is the same then merge
    along their first dimension. Compact, though not always minimal.
    """
    if not vectors or not vectors[0]:
        return [()] if vectors else []
    if len(vectors[0]) == 1:
        return [(_fold_numbers([v[0] for v in vectors]),)]
    rests: dict[str, list[tuple[str, ...]]] = {}
    for vector in vectors:
        rests.setdefault(vector[0], []).append(vector[1:])
    heads_by_row: dict[tuple[str, ...], list[str]] = {}
    for head, rest in rests.items():
        for row in _fold_vectors(rest):
            heads_by_row.setdefault(row, []).append(head)
    rows = [(_fold_numbers(heads), *row) for row, heads in heads_by_row.items()]
    return sorted(rows, key=lambda r: tuple(_number_key(v.split(",")[0].split("-")[0])
                                            for v in r))


def _fold_numbers(values: list[str]) -> str:
    """``1,3,5-7``: the values in order, consecutive ones of the same padding as ``a-b``."""
    runs: list[list[str]] = []
    for value in sorted(set(values), key=_number_key):
        if runs and _continues(runs[-1], value):
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(run[0] if len(run) == 1 else f"{run[0]}-{run[-1]}" for run in runs)


def _continues(run: list[str], value: str) -> bool:
    """Whether ``value`` is the next of ``run`` and written as the run's first bound says."""
    first, last = run[0], run[-1]
    if int(value) != int(last) + 1:
        return False
    padding = len(first) if len(first) > 1 and first.startswith("0") else 0
    return value == str(int(value)).zfill(padding) and (not padding or len(value) == padding)


def compact(names: Sequence[str], *, most: int = 8, width: int = 160) -> str:
    """Names for people, as short as is honest: folded (``web[01-20]``, as ``clush -b``
    shows a group) when every name is plain enough to fold and the result fits ``width``;
    else the first ``most``, comma separated, and how many more."""
    if names and all(_FOLDABLE.fullmatch(name) for name in names):
        folded = fold(names)
        if len(folded) <= width:
            return folded
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
