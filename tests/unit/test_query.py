"""The target query language: every term form, negation, OR, quotes, errors, scale."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from core.model import Health, HealthStatus, Machine, MachineKind, OsType
from core.query import FIELDS, Query, QueryError, filter_machines, parse_query


def machine(
    name: str,
    *,
    kind: MachineKind = MachineKind.VM,
    os: OsType = OsType.LINUX,
    location: str = "westeurope",
    subscription: str = "sub-prod",
    tags: Mapping[str, str] | None = None,
    status: HealthStatus = HealthStatus.READY,
    ident: str = "",
) -> Machine:
    return Machine(
        id=ident or f"/subscriptions/{subscription}/vms/{name}",
        name=name,
        kind=kind,
        os=os,
        location=location,
        subscription=subscription,
        tags=dict(tags or {}),
        health=Health(status),
    )


FLEET = [
    machine("web-01", tags={"env": "prod", "owner": "ops team", "Role": "Frontend"}),
    machine("web-02", tags={"env": "staging"}, location="eastus"),
    machine(
        "db-01",
        os=OsType.WINDOWS,
        kind=MachineKind.ARC,
        tags={"env": "prod"},
        status=HealthStatus.DISCONNECTED,
        subscription="sub-data",
    ),
    machine(
        "bastion",
        kind=MachineKind.SSH,
        location="",
        subscription="",
        status=HealthStatus.UNKNOWN,
        ident="ops@bastion.example.com",
    ),
    machine(
        "laptop",
        kind=MachineKind.LOCAL,
        location="",
        subscription="",
        status=HealthStatus.NOT_READY,
        tags={"env": ""},
    ),
    machine(
        "Win-App",
        os=OsType.WINDOWS,
        status=HealthStatus.AGENT_TOO_OLD,
        tags={"env": "dev", "owner": "app, team"},
    ),
    machine("old-vm", status=HealthStatus.DEALLOCATED, location="northeurope"),
    machine("edge-1", kind=MachineKind.SSH, status=HealthStatus.UNREACHABLE, location=""),
]


def names(text: str) -> list[str]:
    return [m.name for m in filter_machines(FLEET, text)]


# -- term forms ---------------------------------------------------------------------------


def test_empty_query_matches_everything() -> None:
    assert names("") == [m.name for m in FLEET]
    assert names("   \t ") == [m.name for m in FLEET]
    query = parse_query("")
    assert not query and query.describe() == ""
    assert all(query.matches(m) for m in FLEET)


def test_plain_text_is_a_case_insensitive_substring_of_name_or_id() -> None:
    assert names("WEB") == ["web-01", "web-02"]
    assert names("example.com") == ["bastion"]  # only in the id
    assert names("sub-data") == ["db-01"]  # the id holds the subscription
    assert names("nothing-like-this") == []


def test_name_glob_is_case_insensitive_and_whole_name() -> None:
    assert names("name:web-*") == ["web-01", "web-02"]
    assert names("name:WIN-*") == ["Win-App"]
    assert names("name:web") == []  # a glob matches the whole name, not a part
    assert names("name:?astion") == ["bastion"]
    assert names("name:web-0[2-9]") == ["web-02"]


def test_tag_with_value_and_tag_present() -> None:
    assert names("tag:env=prod") == ["web-01", "db-01"]
    assert names("tag:env=PROD") == ["web-01", "db-01"]  # values compare case-insensitively
    assert names("tag:ENV=prod") == ["web-01", "db-01"]  # so do names (as Azure's do)
    assert names("tag:env=*ing") == ["web-02"]  # the value may be a glob
    assert names("tag:role=frontend") == ["web-01"]
    assert names("tag:owner") == ["web-01", "Win-App"]
    assert names("tag:nosuch") == []


def test_tag_empty_value_needs_quotes() -> None:
    assert names('tag:env=""') == ["laptop"]
    assert names("tag:env") == ["web-01", "web-02", "db-01", "laptop", "Win-App"]


def test_os_kind_and_aliases() -> None:
    assert names("os:windows") == ["db-01", "Win-App"]
    assert names("OS:Linux") == [m.name for m in FLEET if m.os is OsType.LINUX]
    assert names("kind:arc") == ["db-01"]
    assert names("kind:ssh") == ["bastion", "edge-1"]
    assert names("kind:local") == ["laptop"]
    assert names("kind:vm") == ["web-01", "web-02", "Win-App", "old-vm"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ready", ["web-01", "web-02"]),
        ("notready", ["laptop"]),
        ("NotReady", ["laptop"]),
        ("not-ready", ["laptop"]),
        ("disconnected", ["db-01"]),
        ("agenttooold", ["Win-App"]),
        ("deallocated", ["old-vm"]),
        ("unreachable", ["edge-1"]),
        ("unknown", ["bastion"]),
    ],
)
def test_health_matches_every_status_case_insensitively(value: str, expected: list[str]) -> None:
    assert names(f"health:{value}") == expected


def test_health_ok_is_runnable_and_bad_is_not() -> None:
    ok = names("health:ok")
    bad = names("health:bad")
    assert ok == [m.name for m in FLEET if m.health.runnable] == ["web-01", "web-02", "bastion"]
    assert sorted(ok + bad) == sorted(m.name for m in FLEET)


def test_location_and_subscription_globs_with_aliases() -> None:
    assert names("location:*europe") == ["web-01", "db-01", "Win-App", "old-vm"]
    assert names("loc:eastus") == ["web-02"]
    assert names("loc:NORTH*") == ["old-vm"]
    assert names("subscription:sub-data") == ["db-01"]
    assert names("sub:sub-*") == names("subscription:sub-*")
    assert "bastion" not in names("sub:sub-*")


def test_field_names_are_case_insensitive() -> None:
    assert names("NAME:web-01 Tag:env=prod LOC:west*") == ["web-01"]


# -- combining ----------------------------------------------------------------------------


def test_terms_are_anded() -> None:
    assert names("web tag:env=prod") == ["web-01"]
    assert names("os:linux health:ok kind:vm") == ["web-01", "web-02"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!web", ["db-01", "bastion", "laptop", "Win-App", "old-vm", "edge-1"]),
        ("!tag:env=prod", ["web-02", "bastion", "laptop", "Win-App", "old-vm", "edge-1"]),
        ("!os:linux", ["db-01", "Win-App"]),
        ("!health:ok kind:ssh", ["edge-1"]),
        ("!name:*-*", ["bastion", "laptop"]),
        ("!tag:env", ["bastion", "old-vm", "edge-1"]),
    ],
)
def test_leading_bang_negates_any_term(text: str, expected: list[str]) -> None:
    assert names(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("os:linux,windows", [m.name for m in FLEET]),
        ("name:web-*,db-*", ["web-01", "web-02", "db-01"]),
        ("tag:env=prod,staging", ["web-01", "web-02", "db-01"]),
        ("tag:role,owner", ["web-01", "Win-App"]),
        ("kind:arc,local", ["db-01", "laptop"]),
        ("health:disconnected,unreachable", ["db-01", "edge-1"]),
        ("loc:eastus,northeurope", ["web-02", "old-vm"]),
        ("bastion,laptop", ["bastion", "laptop"]),
        ("!kind:vm,arc", ["bastion", "laptop", "edge-1"]),  # negates the whole OR
    ],
)
def test_commas_or_the_alternatives(text: str, expected: list[str]) -> None:
    assert names(text) == expected


def test_double_quotes_allow_spaces_and_protect_syntax() -> None:
    assert names('tag:owner="ops team"') == ["web-01"]
    assert names('tag:owner="app, team"') == ["Win-App"]  # a quoted comma is not an OR
    assert names('"ops team"') == []  # plain text: not in any name or id
    assert names('tag:"owner"="ops team"') == ["web-01"]
    assert names('"ops@bastion"') == ["bastion"]


def test_quotes_make_colons_and_bangs_literal_text() -> None:
    odd = [machine("host:22", ident="h1"), machine("!alert", ident="h2")]
    assert [m.name for m in filter_machines(odd, '"host:22"')] == ["host:22"]
    assert [m.name for m in filter_machines(odd, '"!alert"')] == ["!alert"]
    assert [m.name for m in filter_machines(odd, '!"!alert"')] == ["host:22"]


def test_backslash_escapes_inside_quotes() -> None:
    odd = [machine('say "hi"', ident="a"), machine("back\\slash", ident="b")]
    assert [m.name for m in filter_machines(odd, r'"say \"hi\""')] == ['say "hi"']
    assert [m.name for m in filter_machines(odd, r'"back\\slash"')] == ["back\\slash"]


def test_an_already_parsed_query_can_be_reused() -> None:
    query = parse_query("os:linux !health:bad")
    assert filter_machines(FLEET, query) == filter_machines(FLEET, "os:linux !health:bad")
    assert [m.name for m in FLEET if query.matches(m)] == names("os:linux !health:bad")


# -- describe -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("web", "web"),
        ("  web   db ", "web db"),
        ("LOC:west* SUB:abc", "location:west* subscription:abc"),
        ("OS:Linux,WINDOWS kind:VM", "os:linux,windows kind:vm"),
        ("health:NotReady,OK", "health:notready,ok"),
        ("!tag:env=prod,staging", "!tag:env=prod,staging"),
        ('tag:owner="ops team"', 'tag:owner="ops team"'),
        ('tag:env=""', 'tag:env=""'),
        ('"host:22"', '"host:22"'),
        ('"a,b",c', '"a,b",c'),
        (r'"say \"hi\""', r'"say \"hi\""'),
        ("name:web-*,db-*", "name:web-*,db-*"),
    ],
)
def test_describe_normalizes_and_round_trips(text: str, normalized: str) -> None:
    query = parse_query(text)
    assert query.describe() == normalized
    assert str(query) == normalized
    assert parse_query(normalized) == query  # same terms, and so the same matches


def test_query_records_its_source_text() -> None:
    assert parse_query("LOC:x").text == "LOC:x"
    assert isinstance(parse_query("x"), Query)


# -- bad input ----------------------------------------------------------------------------


def test_unknown_field_names_the_term_and_the_fields() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("web colour:red")
    message = str(info.value)
    assert message.startswith(
        "unknown field 'colour' in 'colour:red'; fields: name, tag, os, kind, health, "
        "location, subscription"
    )
    assert '"colour:red"' in message  # and how to search for the text instead
    assert isinstance(info.value, ValueError)


def test_every_field_is_listed_in_the_unknown_field_error() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("x:y")
    assert all(f in str(info.value) for f in FIELDS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("os:mac", "os:'mac' is not an os; allowed: linux, windows"),
        ("os:linux,mac", "os:'mac' is not an os; allowed: linux, windows"),
        ("kind:container", "kind:'container' is not a kind; allowed: vm, arc, ssh, local"),
        (
            "health:sick",
            "health:'sick' is not a health status; allowed: ready, notready, disconnected, "
            "agenttooold, blocked, notpermitted, deallocated, unreachable, unknown, ok, bad",
        ),
    ],
)
def test_bad_enum_values_name_what_is_allowed(text: str, expected: str) -> None:
    with pytest.raises(QueryError, match="^" + expected.replace("(", r"\(")):
        parse_query(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('tag:owner="ops team', "unbalanced quote in 'tag:owner=\"ops team'"),
        ('web "', "unbalanced quote"),
        ("tag:", "empty value in 'tag:'; write tag:NAME or tag:NAME=VALUE"),
        ("name:", "empty value in 'name:'"),
        ("os:", "empty value in 'os:'"),
        ("health:", "empty value in 'health:'"),
        ("loc:", "empty value in 'loc:'"),
        ("tag:env=", "empty value in 'tag:env='"),
        ("tag:=prod", "empty tag name in 'tag:=prod'"),
        ("os:linux,", "empty alternative in 'os:linux,'"),
        ("name:,web", "empty alternative"),
        ("tag:env=prod,,dev", "empty alternative"),
        ("!", "lone '!' in '!'"),
        ("web ! db", "lone '!'"),
        ("!!web", "double negation in '!!web'"),
        ('""', "empty text"),
        (":web", "unknown field '' in ':web'"),
    ],
)
def test_malformed_queries_are_rejected_with_a_clear_message(text: str, expected: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(text)
    assert str(info.value).startswith(expected)


def test_errors_are_raised_by_filter_machines_too() -> None:
    with pytest.raises(QueryError):
        filter_machines(FLEET, "os:beos")


# -- scale --------------------------------------------------------------------------------


def test_filtering_ten_thousand_machines_is_correct() -> None:
    statuses = list(HealthStatus)
    fleet = [
        machine(
            f"{'web' if i % 2 else 'db'}-{i:05d}",
            os=OsType.LINUX if i % 3 else OsType.WINDOWS,
            kind=list(MachineKind)[i % 4],
            location="westeurope" if i % 5 else "eastus",
            tags={"env": "prod" if i % 7 else "dev"},
            status=statuses[i % len(statuses)],
            ident=f"id-{i}",
        )
        for i in range(10_000)
    ]
    text = "name:web-*,db-000* !tag:env=dev os:linux health:ok loc:west*"
    expected = [
        m
        for i, m in enumerate(fleet)
        if (i % 2 or m.name.startswith("db-000"))
        and i % 7
        and i % 3
        and statuses[i % len(statuses)].runnable
        and i % 5
    ]
    got = filter_machines(fleet, text)
    assert got == expected
    assert 0 < len(got) < len(fleet)
    query = parse_query(text)
    assert [m for m in fleet if query.matches(m)] == expected
    assert filter_machines(fleet, "") == fleet


def test_scaleset_selects_the_members_of_a_scale_set() -> None:
    members = [
        machine("queue-ss/0", tags={"scaleset": "queue-ss", "orchestration": "Uniform"}),
        machine("queue-ss/1", tags={"scaleset": "queue-ss", "orchestration": "Uniform"}),
        machine("api-flex_1a2b3c4d", tags={"scaleset": "api-flex", "orchestration": "Flexible"}),
        machine("web-01"),
    ]

    def names(text: str) -> list[str]:
        return [m.name for m in filter_machines(members, text)]

    assert names("scaleset:queue-ss") == ["queue-ss/0", "queue-ss/1"]
    assert names("scaleset:QUEUE-*,api-flex") == ["queue-ss/0", "queue-ss/1",
                                                  "api-flex_1a2b3c4d"]
    assert names("scaleset:*") == ["queue-ss/0", "queue-ss/1", "api-flex_1a2b3c4d"]
    assert names("!scaleset:*") == ["web-01"]
    assert parse_query("scaleset:queue-ss").describe() == "scaleset:queue-ss"
