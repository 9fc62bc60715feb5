"""The fleet file: the default fleet's make-up, count expansion, durations, and errors that
name the dotted field path and what is allowed."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from core.sandbox.fleet import (
    FleetFileError,
    Storm,
    default_fleet,
    load_fleet,
    parse_fleet,
)
from core.sandbox.service import SandboxService

SUB = "00000000-0000-4000-8000-000000000001"
MACHINE = {"name": "web-01", "kind": "vm", "os": "linux", "subscription": SUB,
           "resource_group": "rg-web", "location": "westeurope"}


def fleet_data(*machines: dict[str, Any], **tables: Any) -> dict[str, Any]:
    return {**tables, "machines": [{**MACHINE, **m} for m in machines] or [dict(MACHINE)]}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


# ------------------------------------------------------------------------- the default fleet


def test_the_default_fleet_has_the_documented_make_up() -> None:
    fleet = default_fleet()
    machines = fleet.machines
    assert len(machines) == 22
    assert Counter(m.os for m in machines) == {"linux": 17, "windows": 5}
    # One small scale set of each orchestration mode, 2 Linux instances each.
    assert [(s.name, s.orchestration, s.capacity) for s in fleet.scale_sets] == [
        ("queue-ss", "Uniform", 2), ("api-flex", "Flexible", 2)]
    assert Counter(m.orchestration for m in machines if m.scale_set) == {
        "Uniform": 2, "Flexible": 2}
    assert {m.kind for m in machines} == {"vm", "arc"}
    assert {m.kind for m in machines if m.os == "windows"} == {"vm", "arc"}
    assert len(fleet.subscriptions) == 2
    assert len({m.location for m in machines}) == 3
    assert all({"env", "role"} <= set(m.tags) for m in machines)
    assert {m.tags["env"] for m in machines} >= {"prod", "staging"}
    assert len({m.tags["role"] for m in machines}) >= 4

    vms = [m for m in machines if m.kind == "vm"]
    arcs = [m for m in machines if m.kind == "arc"]
    assert [m.name for m in vms if m.agent == "not-ready"] == ["web-05"]
    assert [m.name for m in vms if m.power == "deallocated"] == ["db-02"]
    assert all(m.power == "running" for m in vms if m.name != "db-02")
    assert [m.name for m in arcs if m.status == "disconnected"] == ["onprem-batch-02"]
    old = [m.name for m in arcs if _version(m.agent_version) < (1, 33)]
    assert old == ["onprem-legacy-01"]
    # Run Command blocked on the machine: one by its blocklist, one by monitor mode.
    assert [(m.name, m.os) for m in arcs if m.extensions_blocklist] == [
        ("onprem-locked-01", "linux")]
    assert [(m.name, m.os) for m in arcs if m.config_mode == "monitor"] == [
        ("onprem-monitor-01", "windows")]
    # The troubled machines are distinct, so each problem can be shown on its own.
    assert len({"web-05", "db-02", "onprem-batch-02", "onprem-legacy-01", "onprem-locked-01",
                "onprem-monitor-01"}) == 6
    assert len({m.name.lower() for m in machines}) == 22


def test_the_shipped_file_loads_through_load_fleet_too(tmp_path: Path) -> None:
    text = resources.files("core.sandbox").joinpath("default_fleet.toml").read_text("utf-8")
    path = tmp_path / "fleet.toml"
    path.write_text(text, encoding="utf-8")
    loaded = load_fleet(path)
    shipped = default_fleet()
    # Each load makes its own account key (the file sets none); all else is the same.
    assert loaded.account_key != shipped.account_key
    assert replace(loaded, account_key="") == replace(shipped, account_key="")
    assert loaded.flush_interval == 1.0 and loaded.pickup_delay == 0.3
    assert loaded.seed == 7
    assert loaded.throttle.reads.capacity == 250 and loaded.throttle.graph_window == 5.0


# ------------------------------------------------------------------------------ expansion


@pytest.mark.parametrize(("pattern", "names"), [
    ("web-{n}", ["web-1", "web-2", "web-3"]),
    ("web-{n:02}", ["web-01", "web-02", "web-03"]),
    ("{n:03}.host", ["001.host", "002.host", "003.host"]),
])
def test_count_expands_the_n_placeholder(pattern: str, names: list[str]) -> None:
    fleet = parse_fleet(fleet_data({"name": pattern, "count": 3, "tags": {"env": "test"}}))
    assert [m.name for m in fleet.machines] == names
    assert all(m.tags == {"env": "test"} and m.kind == "vm" for m in fleet.machines)


def test_count_one_keeps_the_name_as_written() -> None:
    fleet = parse_fleet(fleet_data({"name": "solo", "count": 1}))
    assert [m.name for m in fleet.machines] == ["solo"]


def test_defaults_apply_and_machines_override_them() -> None:
    data = {"defaults": {"subscription": SUB, "resource_group": "rg-a",
                         "location": "West Europe", "os": "windows"},
            "machines": [{"name": "a"}, {"name": "b", "resource_group": "rg-b", "os": "linux"}]}
    a, b = parse_fleet(data).machines
    assert (a.resource_group, a.os, a.location) == ("rg-a", "windows", "westeurope")
    assert (b.resource_group, b.os) == ("rg-b", "linux")


def test_the_same_name_is_fine_in_another_resource_group() -> None:
    fleet = parse_fleet(fleet_data({"name": "web-01"},
                                   {"name": "web-01", "resource_group": "rg-other"}))
    assert len(fleet.machines) == 2


# ------------------------------------------------------------------------------ durations


@pytest.mark.parametrize(("value", "seconds"), [
    ("250ms", 0.25), ("2s", 2.0), ("5m", 300.0), ("1h", 3600.0), ("1.5s", 1.5),
    (" 2 s ", 2.0), ("3", 3.0), (3, 3.0), (0.75, 0.75), (0, 0.0),
])
def test_durations(value: Any, seconds: float) -> None:
    fleet = parse_fleet(fleet_data(
        {"faults": {"latency": value}},
        sandbox={"agent_timeout": value, "pickup_delay": value},
        faults={"blob_delay": value},
    ))
    assert fleet.agent_timeout == pytest.approx(seconds)
    assert fleet.pickup_delay == pytest.approx(seconds)
    assert fleet.faults.blob_delay == pytest.approx(seconds)
    assert fleet.machines[0].faults.latency == pytest.approx(seconds)


def test_faults_and_throttle_tables_are_read() -> None:
    fleet = parse_fleet(fleet_data(
        {"faults": {"error_rate": 0.5, "throttle_storm": {"every": "10s", "lasting": "2s"},
                    "stuck": True, "disconnect_after": "3s", "delete_errors": 2}},
        faults={"latency": "100ms", "drop_rate": 0.25},
        throttle={"writes": {"capacity": 3, "refill_per_second": 1}, "graph_queries": 2,
                  "graph_window": "2m"},
    ))
    machine = fleet.machines[0].faults
    assert machine.error_rate == 0.5 and machine.stuck and machine.disconnect_after == 3.0
    assert machine.delete_errors == 2 and fleet.faults.delete_errors == 0
    assert machine.throttle_storm == Storm(10.0, 2.0)
    assert fleet.faults.latency == 0.1 and fleet.faults.drop_rate == 0.25
    assert fleet.throttle.writes.capacity == 3 and fleet.throttle.writes.refill_per_second == 1
    assert fleet.throttle.reads.capacity == 250  # untouched buckets keep ARM's defaults
    assert fleet.throttle.graph_queries == 2 and fleet.throttle.graph_window == 120.0


# ---------------------------------------------------------------------------------- errors


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change to ``fleet_data()`` at a dotted path (``machines.0.kind``)."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[last] = value

    return change


def _add(**machine: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        data["machines"].append({**MACHINE, **machine})

    return change


ERRORS: list[tuple[str, Callable[[dict[str, Any]], None], str, list[str]]] = [
    # (id, change, the dotted path the message starts with, fragments it must contain)
    ("unknown top-level key", _set("sandboxes", {}), "sandboxes",
     ["unknown key", "machines", "throttle"]),
    ("unknown sandbox key", _set("sandbox.flush", "1s"), "sandbox.flush",
     ["unknown key", "flush_interval"]),
    ("unknown machine key", _set("machines.0.colour", "red"), "machines[0].colour",
     ["unknown key", "kind", "executor"]),
    ("unknown fault key", _set("faults.jitter", 1), "faults.jitter",
     ["unknown key", "latency", "error_rate"]),
    ("unknown machine fault key", _set("machines.0.faults.jitter", 1),
     "machines[0].faults.jitter", ["unknown key", "drop_rate"]),
    ("negative delete errors", _set("faults.delete_errors", -1), "faults.delete_errors",
     ["an integer from 0"]),
    ("unknown storm key", _set("faults.throttle_storm", {"every": 5, "lasting": 1, "x": 1}),
     "faults.throttle_storm.x", ["unknown key", "every, lasting"]),
    ("unknown bucket key", _set("throttle.reads", {"size": 5}), "throttle.reads.size",
     ["unknown key", "capacity, refill_per_second"]),
    ("unknown simulate key", _set("machines.0.simulate", {"speed": 1}),
     "machines[0].simulate.speed", ["unknown key", "duration"]),
    ("unknown storage key", _set("storage.endpoint", "x"), "storage.endpoint",
     ["unknown key", "account"]),
    ("bad kind", _set("machines.0.kind", "container"), "machines[0].kind",
     ["'container'", "allowed: vm, arc"]),
    ("bad os", _set("machines.0.os", "macos"), "machines[0].os", ["'macos'", "linux, windows"]),
    ("bad executor", _set("machines.0.executor", "docker"), "machines[0].executor",
     ["'docker'", "process, simulated"]),
    ("bad vm agent", _set("machines.0.agent", "gone"), "machines[0].agent",
     ["'gone'", "ready, not-ready"]),
    ("bad vm power", _set("machines.0.power", "hibernated"), "machines[0].power",
     ["'hibernated'", "running, stopped, deallocated"]),
    ("bad arc status", _add(name="arc-1", kind="arc", status="asleep"), "machines[1].status",
     ["'asleep'", "connected, disconnected, error, expired"]),
    ("bad timeout state", _set("sandbox.timeouts_report_as", "Timeout"),
     "sandbox.timeouts_report_as", ["'Timeout'", "Failed, TimedOut"]),
    ("bad duration", _set("sandbox.flush_interval", "fast"), "sandbox.flush_interval",
     ["'fast'", "not a duration", "'250ms'"]),
    ("bad duration unit", _set("faults.latency", "2 days"), "faults.latency",
     ["not a duration"]),
    ("negative duration", _set("machines.0.faults.blob_delay", -1),
     "machines[0].faults.blob_delay", ["not a duration"]),
    ("boolean duration", _set("throttle.graph_window", True), "throttle.graph_window",
     ["not a duration"]),
    ("bad simulated duration", _set("machines.0.simulate", {"duration": ["2s", "1s"]}),
     "machines[0].simulate.duration", ["high end"]),
    ("duration below minimum", _set("sandbox.flush_interval", "10ms"),
     "sandbox.flush_interval", ["at least 0.05 s"]),
    ("duplicate name", _add(name="web-01"), "machines[1].name",
     ["'web-01'", "machines[0]", "rg-web", "unique"]),
    ("duplicate name in another case", _add(name="WEB-01"), "machines[1].name",
     ["'WEB-01'", "machines[0]"]),
    ("duplicate name from count", _add(name="web-{n:02}", count=2), "machines[1].name",
     ["'web-01'", "machines[0]"]),
    ("count without {n}", _set("machines.0.count", 3), "machines[0].name",
     ["count > 1", "{n}"]),
    ("count zero", _set("machines.0.count", 0), "machines[0].count", ["1 to 100000"]),
    ("other placeholder", _add(name="web-{n}-{i}", count=2), "machines[1].name",
     ["only the {n} placeholder"]),
    ("bad machine name", _set("machines.0.name", "web 01"), "machines[0].name",
     ["'web 01'", "letters, digits"]),
    ("missing subscription", lambda d: d["machines"][0].pop("subscription"),
     "machines[0].subscription", ["required"]),
    ("no machines", lambda d: d.update(machines=[]), "machines", ["at least one"]),
    ("bad account name", _set("storage.account", "Fleet_Run"), "storage.account",
     ["'Fleet_Run'", "3-24 lowercase letters and digits"]),
    ("short account name", _set("storage.account", "ab"), "storage.account",
     ["3-24 lowercase"]),
    ("account named subscriptions", _set("storage.account", "subscriptions"),
     "storage.account", ["'subscriptions'", "ARM", "providers"]),
    ("account named providers", _set("storage.account", "providers"), "storage.account",
     ["'providers'", "ARM", "subscriptions"]),
    ("bad container name", _set("storage.containers", ["ok-name", "Bad--Name"]),
     "storage.containers", ["'Bad--Name'", "lowercase letters, digits and single hyphens"]),
    ("containers not a list", _set("storage.containers", "fleetrun"), "storage.containers",
     ["list"]),
    ("storm lasting >= every", _set("faults.throttle_storm", {"every": "5s", "lasting": "5s"}),
     "faults.throttle_storm.lasting", ["shorter than every"]),
    ("machine storm lasting > every",
     _set("machines.0.faults.throttle_storm", {"every": 1, "lasting": 2}),
     "machines[0].faults.throttle_storm.lasting", ["shorter than every"]),
    ("storm without every", _set("faults.throttle_storm", {"lasting": "1s"}),
     "faults.throttle_storm.every", ["required"]),
    ("rate above one", _set("faults.error_rate", 1.5), "faults.error_rate", ["0 to 1"]),
    ("negative rate", _set("machines.0.faults.drop_rate", -0.1), "machines[0].faults.drop_rate",
     ["0 to 1"]),
    ("stuck not a boolean", _set("machines.0.faults.stuck", "yes"), "machines[0].faults.stuck",
     ["true or false"]),
    ("vm with status", _set("machines.0.status", "connected"), "machines[0].status",
     ["Arc", "agent and power"]),
    ("arc with agent", _add(name="arc-1", kind="arc", agent="ready"), "machines[1].agent",
     ["VMs", "status"]),
    ("arc with power", _add(name="arc-1", kind="arc", power="running"), "machines[1].power",
     ["VMs", "status"]),
    ("bad refill", _set("throttle.writes", {"refill_per_second": 0}),
     "throttle.writes.refill_per_second", ["above 0"]),
    ("bad capacity", _set("throttle.reads", {"capacity": 0}), "throttle.reads.capacity",
     ["1 to"]),
    ("bad seed", _set("sandbox.seed", "seven"), "sandbox.seed", ["integer"]),
    ("tags not strings", _set("machines.0.tags", {"env": 1}), "machines[0].tags",
     ["string values"]),
    ("table expected", _set("faults", "none"), "faults", ["table"]),
]


@pytest.mark.parametrize(("change", "path", "fragments"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_name_the_field_and_what_is_allowed(
    change: Callable[[dict[str, Any]], None], path: str, fragments: list[str]
) -> None:
    data = copy.deepcopy(fleet_data())
    change(data)
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(data)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message


def test_the_unchanged_base_fleet_is_valid() -> None:
    assert parse_fleet(fleet_data()).machines[0].name == "web-01"


# ------------------------------------------------------------------------------ load_fleet


def test_load_fleet_names_the_file_for_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[sandbox]\nseed = = 3\n', encoding="utf-8")
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "not valid TOML" in message
    assert "line 2" in message


def test_load_fleet_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "fleet.toml"
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "cannot read" in message
    assert "No such file" in message


def test_load_fleet_prefixes_field_errors_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(
        '[[machines]]\nname = "a"\nkind = "pod"\nsubscription = "s"\n'
        'resource_group = "rg"\nlocation = "eastus"\n', encoding="utf-8")
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path)
    assert str(caught.value) == (f"{path}: machines[0].kind: 'pod' is not allowed; "
                                 "allowed: vm, arc")


def test_a_machine_can_switch_off_a_fleet_wide_fault(tmp_path: Path) -> None:
    fleet = parse_fleet({
        "faults": {"error_rate": 1.0, "latency": "2s", "stuck": True},
        "machines": [
            {"name": "calm", "subscription": "s", "resource_group": "r", "location": "l",
             "faults": {"error_rate": 0, "stuck": False}},
            {"name": "plain", "subscription": "s", "resource_group": "r", "location": "l"},
        ],
    })
    service = SandboxService(fleet, root=tmp_path)
    calm, plain = (service.faults_for(m) for m in service.all_machines())
    assert (calm.error_rate, calm.stuck, calm.latency) == (0.0, False, 2.0)
    assert (plain.error_rate, plain.stuck, plain.latency) == (1.0, True, 2.0)
