"""The redactor: every occurrence masked, however the stream is cut, re-read or resumed."""

from __future__ import annotations

import itertools
import random

import pytest

from core.model import Command, CommandId, Parameter
from core.redaction import Mark, SecretMask, StreamRedactor

SECRET_SETS = [
    ["abcab"], ["ab", "bc"], ["aa"], ["abc", "cde"], ["x"], ["ab", "abcd"], ["dab", "abd"],
    ["pässwörd"], ["abcdeabcde", "eab"],
]


def brute_force(secrets: list[str], data: bytes, *, start: bool = True
                ) -> tuple[bytes, int]:
    """Every occurrence found at every position, overlapping ones merged: the reference.

    With ``start``, the data is a stream from its start, which may begin with the end of a
    secret (3 bytes or more of it).
    """
    encoded = [x.encode() for x in secrets]
    spans = sorted((i, i + len(s)) for s in encoded
                   for i in range(len(data)) if data.startswith(s, i))
    head = max((n for s in encoded for n in range(3, len(s)) if data.startswith(s[-n:])),
               default=0)
    if start and head:
        spans = sorted([*spans, (0, head)])
    merged: list[list[int]] = []
    for start, stop in spans:
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    out, position = b"", 0
    for start, stop in merged:
        out += data[position:start] + b"***"
        position = stop
    return out + data[position:], len(merged)


def streamed(mask: SecretMask, data: bytes, cuts: list[int]) -> tuple[bytes, int]:
    redactor = StreamRedactor(mask)
    out, start = b"", 0
    for cut in [*cuts, len(data)]:
        out += redactor.feed(start, data[start:cut])
        start = cut
    return out + redactor.flush(), redactor.masked


def texts(secrets: list[str], count: int, seed: int) -> list[bytes]:
    """Streams full of the secrets' own letters, so occurrences overlap and cut often."""
    rng = random.Random(seed)
    letters = sorted(set("".join(secrets)) | {"-"})
    found = []
    for _ in range(count):
        pieces = [rng.choice([*secrets, *letters, *letters]) for _ in range(rng.randint(0, 14))]
        found.append("".join(pieces).encode())
    return found


@pytest.mark.parametrize("secrets", SECRET_SETS, ids=lambda s: "+".join(s))
def test_masking_whole_text_masks_every_occurrence(secrets: list[str]) -> None:
    mask = SecretMask(secrets)
    for data in texts(secrets, 300, seed=1):
        assert mask.mask(data) == brute_force(secrets, data, start=False), data


@pytest.mark.parametrize("secrets", SECRET_SETS, ids=lambda s: "+".join(s))
def test_every_way_of_cutting_a_stream_masks_the_same(secrets: list[str]) -> None:
    mask = SecretMask(secrets)
    for data in texts(secrets, 60, seed=2):
        expected = brute_force(secrets, data)
        if len(data) <= 12:  # every chunking of short streams, one byte chunks included
            chunkings = (list(c) for n in range(len(data))
                         for c in itertools.combinations(range(1, len(data)), n))
        else:
            rng = random.Random(len(data))
            chunkings = (sorted(rng.sample(range(1, len(data)), rng.randint(1, len(data) - 1)))
                         for _ in range(200))
        for cuts in chunkings:
            assert streamed(mask, data, cuts) == expected, (data, cuts)


@pytest.mark.parametrize("secrets", SECRET_SETS, ids=lambda s: "+".join(s))
def test_re_read_ranges_and_resumes_change_nothing(secrets: list[str]) -> None:
    mask = SecretMask(secrets)
    rng = random.Random(3)
    for data in texts(secrets, 200, seed=4):
        expected = brute_force(secrets, data)
        redactor = StreamRedactor(mask)
        out, position = b"", 0
        while position < len(data):
            # A range that may start before what was taken (a blob tailer re-reading).
            start = max(0, position - rng.randint(0, 6))
            stop = min(len(data), position + rng.randint(0, 5))
            out += redactor.feed(start, data[start:stop])
            position = max(position, stop)
            if rng.random() < 0.2:
                # The process dies: what was held back is lost; the stream is read again
                # from its start by a new process that knows only the mark.
                mark, masked = redactor.mark, redactor.masked
                redactor = StreamRedactor(mask, Mark(mark.source, mark.carry))
                redactor.masked = masked
                position = mark.source - rng.randint(0, min(mark.source, 3))
        out += redactor.flush()
        assert (out, redactor.masked) == expected, data


def test_only_a_possible_start_of_a_secret_is_held_back() -> None:
    mask = SecretMask(["s3cr3t-value"])
    redactor = StreamRedactor(mask)
    assert redactor.feed(0, b"line one\nvalue: s3cr") == b"line one\nvalue: "
    assert redactor.mark == Mark(16, 0)
    assert redactor.feed(20, b"3t-value and more\n") == b"*** and more\n"
    assert redactor.feed(38, b"s3cr3t") == b""
    assert redactor.flush() == b"s3cr3t"  # the stream ended: it was not the secret
    assert redactor.masked == 1


def test_a_stream_that_starts_with_the_end_of_a_secret_has_it_masked() -> None:
    """A service that kept only the 4 KB tail gives it as the whole output."""
    redactor = StreamRedactor(SecretMask(["s3cr3t-value"]))
    assert redactor.feed(0, b"-val") == b""  # it may go on as the end of the secret
    assert redactor.feed(4, b"ue\nok\n") == b"***\nok\n"
    other = StreamRedactor(SecretMask(["s3cr3t-value"]))
    assert other.feed(0, b"Starting\n") == b"Starting\n"  # no delay for most streams


def test_a_tail_is_masked_whole_with_a_secret_cut_at_either_edge() -> None:
    mask = SecretMask(["s3cr3t-value"])
    assert mask.mask_tail(b"t-value\nok\n") == b"***\nok\n"
    assert mask.mask_tail(b"ok\nyou s3cr3t-v") == b"ok\nyou ***"
    assert mask.mask_tail(b"ue ok\nthe s3cr3t-value\n") == b"ue ok\nthe ***\n"  # 2 bytes: kept
    assert mask.mask_tail(b"nothing here") == b"nothing here"


def test_errors_and_messages_are_masked_as_text() -> None:
    mask = SecretMask.of([Command(CommandId.SHELL, "x", parameters=(
        Parameter("TOKEN", "tök3n", protected=True), Parameter("USER", "bob")),
        run_as_user="root", run_as_password="hunter22")])
    assert mask.mask_text("bad tök3n for bob, password hunter22") == (
        "bad *** for bob, password ***", 2)


def test_very_short_values_are_masked_anyway() -> None:
    mask = SecretMask(["7"])
    assert mask.mask(b"port 8080, pin 7, 77") == (b"port 8080, pin ***, ******", 3)
    assert SecretMask(["***"]).mask(b"***") == (b"***", 0)
