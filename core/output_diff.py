"""A unified diff of two machines' stored outputs, bounded however big the files are.

Like ``clush --diff``, one output is the reference (the largest group's) and the other is
shown against it. Outputs that differ often share a long identical beginning (the same
banner, the same thousand lines of progress) and differ near the end, so the files are
first compared block by block without keeping them in memory; only a window of at most
:data:`DIFF_BYTES` per side, starting a few lines before the first difference, is diffed.
Whatever was not compared is said in :attr:`StreamDiff.notes`.
"""

from __future__ import annotations

import difflib
import io
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from core.model import MachineRun, Stream

DIFF_BYTES = 128 * 1024
"""The most read from each file for the diff itself, from the window's start."""

SCAN_BYTES = 256 * 1024 * 1024
"""How far two files are compared for their identical beginning before giving up."""

CONTEXT_LINES = 3

_BLOCK = 64 * 1024


@dataclass(frozen=True, slots=True)
class StreamDiff:
    """One stream of two machines, compared.

    Attributes:
        stream: Which stream.
        lines: The unified diff (``---``/``+++`` headers, ``@@`` hunks), one line per item
            without its line end; empty when the streams are identical.
        identical: Every byte was compared and is the same.
        capped: Part of either file was not compared (see ``notes``).
        notes: What was left out, for people.
    """

    stream: Stream
    lines: list[str] = field(default_factory=list)
    identical: bool = False
    capped: bool = False
    notes: list[str] = field(default_factory=list)


def diff_machines(reference: MachineRun, other: MachineRun, *, cap: int = DIFF_BYTES,
                  scan_limit: int = SCAN_BYTES) -> list[StreamDiff]:
    """stdout of ``other`` against ``reference``'s, then stderr when the two differ there.

    stderr is left out when it is identical (empty on both, most of the time).
    """
    diffs = []
    for stream, ref_path, other_path in (
        (Stream.STDOUT, reference.stdout_file, other.stdout_file),
        (Stream.STDERR, reference.stderr_file, other.stderr_file),
    ):
        diff = diff_files(ref_path, other_path, stream=stream,
                          labels=(f"{reference.machine.name} {stream}",
                                  f"{other.machine.name} {stream}"),
                          cap=cap, scan_limit=scan_limit)
        if stream is Stream.STDOUT or not diff.identical:
            diffs.append(diff)
    return diffs


def diff_files(reference: str, other: str, *, stream: Stream = Stream.STDOUT,
               labels: tuple[str, str] = ("reference", "other"), cap: int = DIFF_BYTES,
               scan_limit: int = SCAN_BYTES, context: int = CONTEXT_LINES) -> StreamDiff:
    """The unified diff of two output files (a missing file is an empty output).

    Args:
        reference: Path of the reference output (lines it alone has are ``-``).
        other: Path of the output compared with it (lines it alone has are ``+``).
        stream: Which stream these files hold (carried into the result).
        labels: Names for the ``---`` and ``+++`` headers.
        cap: The most bytes of each file diffed, from a few lines before the first
            difference on.
        scan_limit: The most bytes of each file compared while looking for that difference.
        context: Unchanged lines shown around each change.
    """
    with _open(reference) as ref, _open(other) as oth:
        start, skipped_lines, differs = _common_start(ref, oth, scan_limit, context)
        ref_size, oth_size = _size(ref), _size(oth)
        if not differs and start == ref_size == oth_size:
            return StreamDiff(stream, identical=True)
        if not differs:
            # The scan stopped at its limit with both files still going.
            return StreamDiff(stream, capped=True, notes=[
                f"the first {start:,} bytes are identical; the rest was not compared "
                f"(the diff reads at most {scan_limit:,} bytes of each output)"])
        ref_text, ref_left = _window(ref, start, ref_size, cap)
        oth_text, oth_left = _window(oth, start, oth_size, cap)
    notes: list[str] = []
    if skipped_lines:
        notes.append(f"the first {skipped_lines:,} lines ({start:,} bytes) are identical "
                     "and not shown")
    a = ref_text.splitlines(keepends=True)
    b = oth_text.splitlines(keepends=True)
    if ref_left or oth_left:
        notes.append(f"only {cap:,} bytes of each output were diffed from there; "
                     f"{ref_left:,} bytes of the reference and {oth_left:,} of the other "
                     "were not compared")
    ops = _opcodes(a, b)
    if ref_left or oth_left:
        ops = _without_cut_end(ops)
    hunks = list(_hunks(a, b, ops, skipped_lines, context))
    if not hunks:  # the windows came out equal: the difference is past the cap
        return StreamDiff(stream, capped=True, notes=notes)
    lines = [f"--- {labels[0]}", f"+++ {labels[1]}", *hunks]
    for text, left, which in ((a, ref_left, "the reference"), (b, oth_left, "the other")):
        if text and not left and not text[-1].endswith("\n"):
            lines.append(f"\\ no line end at the end of {which}")
    return StreamDiff(stream, lines=lines, capped=bool(ref_left or oth_left), notes=notes)


def _open(path: str) -> BinaryIO:
    """The file at ``path``; a stream that printed nothing has none: empty output."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return io.BytesIO()


def _size(handle: BinaryIO) -> int:
    here = handle.tell()
    size = handle.seek(0, io.SEEK_END)
    handle.seek(here)
    return size


def _common_start(ref: BinaryIO, oth: BinaryIO, scan_limit: int, context: int
                  ) -> tuple[int, int, bool]:
    """Where the diff window starts: ``context`` lines before the first differing line.

    Returns the window's byte offset, the number of lines before it, and whether a
    difference was found within ``scan_limit`` (False: identical as far as compared).
    """
    offset = 0
    lines = 0
    # (offset, lines before it) just past the last few line ends: where the window may start.
    starts: deque[tuple[int, int]] = deque([(0, 0)], maxlen=context + 1)
    while offset < scan_limit:
        a, b = ref.read(_BLOCK), oth.read(_BLOCK)
        same = _common_prefix_length(a, b)
        lines = _count_lines(a[:same], offset, lines, starts)
        if a == b:
            if not a:
                return offset, lines, False  # both ended: identical
            offset += same
            continue
        window, before = starts[0]
        return window, before, True
    return offset, lines, False


def _common_prefix_length(a: bytes, b: bytes) -> int:
    """Bytes at the start of ``a`` and ``b`` that are equal (a bisection of memcmps)."""
    if a == b:
        return len(a)
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _count_lines(data: bytes, offset: int, lines: int, starts: deque[tuple[int, int]]) -> int:
    """Lines in ``data`` (at ``offset``) added to ``lines``; its last line ends into ``starts``."""
    ends = data.count(b"\n")
    # Only the last few line ends can become the window's start: find them from the end.
    positions: list[int] = []
    cut = len(data)
    while len(positions) < min(ends, starts.maxlen or 1):
        cut = data.rindex(b"\n", 0, cut)
        positions.append(cut)
    before = lines + ends - len(positions)
    for number, pos in enumerate(reversed(positions), start=1):
        starts.append((offset + pos + 1, before + number))
    return lines + ends


def _window(handle: BinaryIO, start: int, size: int, cap: int) -> tuple[str, int]:
    """At most ``cap`` bytes from ``start``, ended at a line end; and how many were left."""
    handle.seek(start)
    data = handle.read(cap)
    left = size - start - len(data)
    if left > 0:
        cut = data.rfind(b"\n")
        if cut >= 0:
            left += len(data) - cut - 1
            data = data[:cut + 1]
    return data.decode("utf-8", errors="replace"), max(0, left)


Opcode = tuple[str, int, int, int, int]
"""difflib's (tag, i1, i2, j1, j2)."""


def _opcodes(a: list[str], b: list[str]) -> list[Opcode]:
    """How ``b`` differs from ``a``, line by line.

    Lines the two share at the start and the end are set aside before difflib looks at the
    rest: output is repetitive (the same progress line a thousand times) and difflib's
    heuristic for long inputs treats such lines as junk, which turns one changed line into
    everything deleted and inserted again.
    """
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    middle_a, middle_b = a[head:len(a) - tail], b[head:len(b) - tail]
    # Exact matching costs up to len(a) * len(b): past the budget difflib's heuristic it is.
    exact = len(middle_a) * len(middle_b) <= _EXACT_BUDGET
    matcher = difflib.SequenceMatcher(None, middle_a, middle_b, autojunk=not exact)
    ops: list[Opcode] = [("equal", 0, head, 0, head)] if head else []
    ops += [(tag, i1 + head, i2 + head, j1 + head, j2 + head)
            for tag, i1, i2, j1, j2 in matcher.get_opcodes()]
    if tail:
        ops.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return ops


_EXACT_BUDGET = 4_000_000


def _without_cut_end(ops: list[Opcode]) -> list[Opcode]:
    """The changes up to the windows' last common lines, when a cap cut either window.

    A window cut by the cap ends wherever its bytes ran out: what follows its last line in
    common with the other would show as a difference that is only the cut's.
    """
    equal = [k for k, op in enumerate(ops) if op[0] == "equal"]
    if not equal or equal[-1] == len(ops) - 1:
        return ops  # nothing in common after the difference, or the windows end alike
    if not any(op[0] != "equal" for op in ops[:equal[-1]]):
        return ops  # the only difference is the one after the cut: it is real
    return ops[:equal[-1] + 1]


def _hunks(a: list[str], b: list[str], ops: list[Opcode], first_line: int, context: int
           ) -> Iterator[str]:
    """Unified hunks of ``ops``, numbered from ``first_line`` + 1 (lines skipped before)."""
    for group in _grouped(ops, context):
        first, last = group[0], group[-1]
        yield (f"@@ -{_range(first[1] + first_line, last[2] - first[1])} "
               f"+{_range(first[3] + first_line, last[4] - first[3])} @@")
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + _chomp(line) for line in a[i1:i2])
                continue
            yield from ("-" + _chomp(line) for line in a[i1:i2])
            yield from ("+" + _chomp(line) for line in b[j1:j2])


def _grouped(ops: list[Opcode], context: int) -> Iterator[list[Opcode]]:
    """Changes with ``context`` lines around them (``SequenceMatcher.get_grouped_opcodes``)."""
    if not any(op[0] != "equal" for op in ops):
        return
    ops = list(ops)
    tag, i1, i2, j1, j2 = ops[0]
    if tag == "equal":
        ops[0] = tag, max(i1, i2 - context), i2, max(j1, j2 - context), j2
    tag, i1, i2, j1, j2 = ops[-1]
    if tag == "equal":
        ops[-1] = tag, i1, min(i2, i1 + context), j1, min(j2, j1 + context)
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal" and i2 - i1 > 2 * context:
            group.append((tag, i1, i1 + context, j1, j1 + context))
            yield group
            group = []
            i1, j1 = max(i1, i2 - context), max(j1, j2 - context)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def _range(start: int, length: int) -> str:
    """``start,length`` as unified diffs write it (1-based; an empty range names the line
    before it)."""
    beginning = start + 1
    if length == 1:
        return f"{beginning}"
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def _chomp(line: str) -> str:
    return line[:-1] if line.endswith("\n") else line
