"""The line that sets a group's output apart from the baseline group's (a group's label).

The rule, stable whatever the order the machines ended in: the first non-blank line of the
group's output (stdout, then stderr) that appears nowhere in the same stream of the
baseline's output; when every line also appears there (the outputs differ in order or
count, past the tails, or only in the exit code), and for the baseline itself, its first
non-blank line. Only the 4 KB tails are compared; a tail that starts mid-line (the stream
is longer) loses that first fragment, which would otherwise be the label (``of a long log``).
With ``noise``, lines are compared modulo noise (:mod:`core.output_noise`), each with its
own machine's names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.model import TAIL_BYTES, Stream
from core.output import OutputGroup, decode_tail
from core.output_noise import normalize_noise

LINE_CHARS = 200
"""The most of a line a label keeps."""


@dataclass(frozen=True, slots=True)
class GroupLine:
    """A group's label: ``text`` (stripped, at most :data:`LINE_CHARS`) from ``stream``.

    ``number`` is the line's index among the tail's whole lines: a label that is not the
    first line is shown after ``… ``. ``differs`` says whether the baseline lacks it.
    """

    text: str
    stream: Stream
    number: int
    differs: bool


def tail_lines(tail: bytes, size: int) -> list[str]:
    """A tail's whole lines: the first is dropped when the stream is longer than the tail
    (``size`` bytes) and so the tail starts in the middle of it."""
    lines = decode_tail(tail).splitlines()
    if size > len(tail) and len(tail) >= TAIL_BYTES and lines:
        lines = lines[1:]
    return lines


def _streams(group: OutputGroup) -> tuple[tuple[Stream, list[str]], ...]:
    return ((Stream.STDOUT, tail_lines(group.stdout_tail, group.stdout_size)),
            (Stream.STDERR, tail_lines(group.stderr_tail, group.stderr_size)))


def telling_line(group: OutputGroup, baseline: OutputGroup | None, *,
                 own_names: Sequence[str] = (), baseline_names: Sequence[str] = (),
                 noise: bool = False) -> GroupLine | None:
    """The line that sets ``group`` apart from ``baseline`` (see the module); None when the
    group printed nothing but blank lines."""
    first: GroupLine | None = None
    theirs = dict(_streams(baseline)) if baseline is not None and baseline is not group else {}
    for stream, lines in _streams(group):
        seen: set[str] | None = None
        if stream in theirs:
            seen = {_key(ln, baseline_names, noise) for ln in theirs[stream]}
        for number, line in enumerate(lines):
            text = line.strip()
            if not text:
                continue
            if first is None:
                first = GroupLine(text[:LINE_CHARS], stream, number, False)
            if seen is not None and _key(line, own_names, noise) not in seen:
                return GroupLine(text[:LINE_CHARS], stream, number, True)
    return first


def _key(line: str, names: Sequence[str], noise: bool) -> str:
    text = line.strip()
    return normalize_noise(text, names) if noise else text
