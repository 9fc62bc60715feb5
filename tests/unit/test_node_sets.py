"""Node sets: ClusterShell's test vectors, bad input, the size cap, folding, and the
expander against a small reference written from the clush docs."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.node_sets import MAX_NODES, NodeSetError, compact, expand, fold

# ssh-conventions.md §3.4: input, expansion in order, folded form (ClusterShell 1.10.1).
VECTORS = [
    ("web[01-20]", [f"web{i:02}" for i in range(1, 21)], "web[01-20]"),
    ("node[09-11]", ["node09", "node10", "node11"], "node[09-11]"),
    ("node[9-11]", ["node9", "node10", "node11"], "node[9-11]"),
    ("n[1,3,5-7]", ["n1", "n3", "n5", "n6", "n7"], "n[1,3,5-7]"),
    ("n[1-10/2]", ["n1", "n3", "n5", "n7", "n9"], "n[1,3,5,7,9]"),
    ("n[01-10/3]", ["n01", "n04", "n07", "n10"], "n[01,04,07,10]"),
    ("a[1-2]b[3-4]", ["a1b3", "a1b4", "a2b3", "a2b4"], "a[1-2]b[3-4]"),
    ("rack[1-2]-node[1-2]",
     ["rack1-node1", "rack1-node2", "rack2-node1", "rack2-node2"], "rack[1-2]-node[1-2]"),
    ("web[1-3]!web2", ["web1", "web3"], "web[1,3]"),
    ("node[0-10]&node[5-13]", [f"node{i}" for i in range(5, 11)], "node[5-10]"),
    ("node[0-10]^node[5-13]", [f"node{i}" for i in [0, 1, 2, 3, 4, 11, 12, 13]],
     "node[0-4,11-13]"),
    ("node[0-7],node[8-10]", [f"node{i}" for i in range(11)], "node[0-10]"),
    ("n[1-3],n[2-5]", ["n1", "n2", "n3", "n4", "n5"], "n[1-5]"),
    ("n[9-11],n[09-11]", ["n9", "n09", "n10", "n11"], "n[9,09-11]"),
    ("n[098-101]", ["n098", "n099", "n100", "n101"], "n[098-101]"),
    ("n[3,1,2]", ["n1", "n2", "n3"], "n[1-3]"),
    ("node[00-02]!node01", ["node00", "node02"], "node[00,02]"),
    ("n[1-5]!n[2-3],n3", ["n1", "n3", "n4", "n5"], "n[1,3-5]"),
    ("n[1-4]&n[2-3],n6", ["n2", "n3", "n6"], "n[2-3,6]"),
    ("h[1-3].example.com", ["h1.example.com", "h2.example.com", "h3.example.com"],
     "h[1-3].example.com"),
    ("10.0.0.[1-3]", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], "10.0.0.[1-3]"),
    ("n[1-3]!n[1-3]", [], ""),
    ("a,b,a", ["a", "b"], "a,b"),
]


@pytest.mark.parametrize(("text", "names", "folded"), VECTORS, ids=[v[0] for v in VECTORS])
def test_clustershell_vectors_expand_and_fold_as_clustershell_does(
    text: str, names: list[str], folded: str
) -> None:
    assert expand(text) == names
    assert fold(names) == folded


def test_folding_merges_along_several_dimensions_and_keeps_unindexed_names() -> None:
    assert fold(["dc1n1", "dc1n2", "dc2n1", "dc2n2"]) == "dc[1-2]n[1-2]"
    assert fold(["n2", "m1", "n1"]) == "m1,n[1-2]"
    assert fold(["n1", "n01"]) == "n[1,01]"


# Vector 16 and row 25, then what else a user gets wrong: (input, character, message part).
BAD = [
    ("n[01-100]", 3, "padding length mismatch"),
    ("n[1-010]", 3, "padding length mismatch"),
    ("n[5-3]", 3, "goes down; write it low-high (3-5)"),
    ("n[]", 2, "empty brackets"),
    ("n[1-3", 2, "never closed"),
    ("n[a-c]", 3, "is not a range; ranges are N, A-B or A-B/STEP"),
    ("n[1-2],", 7, "nothing after ','"),
    ("n[1-3/0]", 3, "a step of 0"),
    ("a,,b", 3, "',' is followed by no name"),
    ("!a", 1, "starts with an operator"),
    ("n[[1]]", 3, "brackets do not nest"),
    ("a]", 2, "']' without '['"),
    ("a b", 2, "a space; separate names with ','"),
    ("web*", 4, "'*' is not allowed in a name"),
    ("@web", 1, "groups (@name) are not supported"),
]


@pytest.mark.parametrize(("text", "at", "what"), BAD, ids=[b[0] for b in BAD])
def test_bad_node_sets_name_the_character_and_what_is_allowed(
    text: str, at: int, what: str
) -> None:
    with pytest.raises(NodeSetError) as caught:
        expand(text)
    message = str(caught.value)
    assert message.startswith(f"{text!r}: at character {at}: "), message
    assert what in message
    assert "\n" not in message


def test_expansion_is_capped_before_anything_is_built() -> None:
    for text in ("n[1-100000000000]", "a[1-200]b[1-200]", "a[1-6000],b[1-6000]"):
        with pytest.raises(NodeSetError, match=f"more than {MAX_NODES}"):
            expand(text)
    assert len(expand(f"n[1-{MAX_NODES}]")) == MAX_NODES
    with pytest.raises(NodeSetError, match="empty node set"):
        expand("  ")


# The reference: ClusterShell's rules as doc/txt/nodeset.txt states them, written plainly
# (string splitting, recursion, Python sets) and sharing no code with core.node_sets.
def reference_expand(text: str) -> set[str]:
    tokens = re.split(r"([,!&^])(?![^\[]*\])", text)  # operators outside brackets
    result = reference_term(tokens[0])
    for operator, term in zip(tokens[1::2], tokens[2::2], strict=True):
        names = reference_term(term)
        if operator == ",":
            result |= names
        elif operator == "!":
            result -= names
        elif operator == "&":
            result &= names
        else:
            result ^= names
    return result


def reference_term(term: str) -> set[str]:
    opening = term.find("[")
    if opening < 0:
        return {term}
    closing = term.index("]", opening)
    head, rest = term[:opening], term[closing + 1:]
    return {head + value + tail
            for value in reference_ranges(term[opening + 1:closing])
            for tail in reference_term(rest)}


def reference_ranges(inside: str) -> list[str]:
    values = []
    for item in inside.split(","):
        bounds, _, step = item.partition("/")
        low, _, high = bounds.partition("-")
        width = len(low) if low.startswith("0") and len(low) > 1 else 0
        values += [str(n).zfill(width)
                   for n in range(int(low), int(high or low) + 1, int(step or 1))]
    return values


@st.composite
def ranges(draw: st.DrawFn) -> str:
    width = draw(st.sampled_from([0, 2, 3]))
    low = draw(st.integers(0, 40))
    high = low + draw(st.integers(0, 25))
    if width and len(str(high)) > width:
        width = 0
    if draw(st.booleans()):
        return str(low).zfill(width)
    step = draw(st.sampled_from(["", "", "/2", "/3"]))
    return f"{str(low).zfill(width)}-{str(high).zfill(width)}{step}"


@st.composite
def terms(draw: st.DrawFn) -> str:
    parts = [draw(st.sampled_from(["n", "web", "db-", "a.b", "x_", "root@h", "10.0."]))]
    for _ in range(draw(st.integers(0, 2))):
        parts.append("[" + ",".join(draw(st.lists(ranges(), min_size=1, max_size=3))) + "]")
        parts.append(draw(st.sampled_from(["", "", "-n", ".prod", "c", ":22"])))
    return "".join(parts)


@st.composite
def node_sets(draw: st.DrawFn) -> str:
    text = draw(terms())
    for _ in range(draw(st.integers(0, 3))):
        text += draw(st.sampled_from(",,!&^")) + draw(terms())
    return text


@settings(max_examples=300, deadline=None)
@given(node_sets())
def test_expansion_matches_the_reference_from_the_clush_docs(text: str) -> None:
    names = expand(text)
    assert len(names) == len(set(names))
    assert set(names) == reference_expand(text)


@settings(max_examples=300, deadline=None)
@given(node_sets())
def test_folding_gives_back_exactly_the_names(text: str) -> None:
    names = expand(text)
    folded = fold(names)
    assert (expand(folded) if folded else []) == names


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["n", "r"]), st.integers(0, 120),
                          st.sampled_from([0, 2, 3])), max_size=40))
def test_folding_any_names_round_trips(indexes: list[tuple[str, int, int]]) -> None:
    names = [f"{prefix}{str(n).zfill(width)}" for prefix, n, width in indexes]
    folded = fold(names)
    assert set(expand(folded) if folded else []) == set(names)


def test_several_bracket_groups_are_a_cartesian_product() -> None:
    expected = ["".join(p) for p in itertools.product(["r1", "r2"], ["-n"], ["01", "02", "03"])]
    assert expand("r[1-2]-n[01-03]") == expected


def test_compact_folds_plain_names_and_lists_the_others() -> None:
    assert compact([f"web{i:02}" for i in range(1, 21)] + ["db1"]) == "db1,web[01-20]"
    odd = [f"vm {i}" for i in range(10)]  # not a node set name: listed as is
    assert compact(odd) == "vm 0, vm 1, vm 2, vm 3, vm 4, vm 5, vm 6, vm 7 and 2 more"
    scattered = [f"h{i}x{i * 7}" for i in range(40)]  # folds to nothing shorter
    assert compact(scattered).endswith(" and 32 more")
