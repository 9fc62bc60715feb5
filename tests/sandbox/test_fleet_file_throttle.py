"""The fleet file's throttle scopes and principals: defaults as documented, every bad value
named with what is allowed, and a token never echoed."""

from __future__ import annotations

from typing import Any

import pytest

from core.sandbox.fleet import FleetFileError, default_fleet, parse_fleet
from core.sandbox.throttle_settings import COMPUTE_OPERATIONS, ComputeGroup

MACHINE = {"name": "web-01", "subscription": "00000000-0000-4000-8000-000000000001",
           "resource_group": "rg-web", "location": "westeurope"}
TOKEN = "a-token-of-engineer-b-0123456789"


def fleet_with(**tables: Any) -> dict[str, Any]:
    return {"machines": [MACHINE], **tables}


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(FleetFileError) as caught:
        parse_fleet(data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_defaults_are_one_principal_in_westeurope_with_documented_limits() -> None:
    fleet = parse_fleet(fleet_with())
    throttle = fleet.throttle
    assert fleet.principals == ()
    assert throttle.region == "westeurope" and throttle.global_factor == 15
    assert (throttle.reads.capacity, throttle.reads.refill_per_second) == (250, 25.0)
    assert throttle.compute.enabled
    assert throttle.compute.groups == (
        ComputeGroup("HighCostGet", frozenset({"vm_instance_view"}), 160, 300),)
    assert throttle.compute.groups_for("run_command_instance_view") == ()
    # The shipped fleet file says the same as the defaults.
    shipped = default_fleet().throttle
    assert shipped.compute == throttle.compute and shipped.region == throttle.region
    assert shipped.global_factor == throttle.global_factor


def test_principals_region_and_compute_groups_are_read() -> None:
    fleet = parse_fleet(fleet_with(
        principals=[{"name": "engineer-b", "token": TOKEN},
                    {"name": "jump-box-mi", "token": TOKEN[::-1]}],
        throttle={"region": "East US 2", "global_factor": 2, "compute": {"groups": {
            "HighCostGet": {"operations": ["vm_instance_view", "run_command_instance_view"]},
            "LowCostGet": {"operations": ["vm_get"], "per_3min": 10, "per_30min": 50},
        }}},
    ))
    assert [p.name for p in fleet.principals] == ["engineer-b", "jump-box-mi"]
    assert TOKEN not in repr(fleet.principals)
    assert fleet.throttle.region == "eastus2" and fleet.throttle.global_factor == 2
    high, low = fleet.throttle.compute.groups
    # HighCostGet keeps its documented counts when the file names only its operations.
    assert (high.per_3min, high.per_30min) == (160, 300)
    assert high.operations == {"vm_instance_view", "run_command_instance_view"}
    assert (low.name, low.per_3min, low.per_30min) == ("LowCostGet", 10, 50)
    off = parse_fleet(fleet_with(throttle={"compute": {"enabled": False}}))
    assert off.throttle.compute.groups_for("vm_instance_view") == ()


_GROUP = {"operations": ["vm_instance_view"], "per_3min": 1, "per_30min": 2}
ERRORS: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("unknown throttle key", {"throttle": {"regions": "x"}}, "throttle.regions",
     ["unknown key", "region", "compute", "global_factor"]),
    ("bad region", {"throttle": {"region": "west-europe!"}}, "throttle.region",
     ["'west-europe!'", "'westeurope'"]),
    ("bad global factor", {"throttle": {"global_factor": 0}}, "throttle.global_factor",
     ["1 to 1000"]),
    ("unknown compute key", {"throttle": {"compute": {"on": True}}}, "throttle.compute.on",
     ["unknown key", "enabled, groups"]),
    ("enabled not a boolean", {"throttle": {"compute": {"enabled": "yes"}}},
     "throttle.compute.enabled", ["true or false"]),
    ("unknown operation", {"throttle": {"compute": {"groups": {"HighCostGet": {
        "operations": ["vm_instance_view", "runcommand_get"]}}}}},
     "throttle.compute.groups.HighCostGet.operations",
     ["'runcommand_get'", "allowed:", *COMPUTE_OPERATIONS]),
    ("no operations", {"throttle": {"compute": {"groups": {"HighCostGet": {}}}}},
     "throttle.compute.groups.HighCostGet.operations", ["one or more of", "vm_get"]),
    ("undocumented group without counts", {"throttle": {"compute": {"groups": {
        "Mine": {"operations": ["vm_get"]}}}}},
     "throttle.compute.groups.Mine.per_3min", ["required", "1 to 1000000"]),
    ("zero count", {"throttle": {"compute": {"groups": {"Mine": {**_GROUP, "per_30min": 0}}}}},
     "throttle.compute.groups.Mine.per_30min", ["1 to 1000000"]),
    ("bad group name", {"throttle": {"compute": {"groups": {"High Cost": _GROUP}}}},
     "throttle.compute.groups.High Cost", ["'High Cost'", "letters and digits"]),
    ("unknown group key", {"throttle": {"compute": {"groups": {"G": {**_GROUP, "per_5min": 1}}}}},
     "throttle.compute.groups.G.per_5min", ["unknown key", "operations, per_30min, per_3min"]),
    ("principals not a list", {"principals": {"name": "b"}}, "principals", ["[[principals]]"]),
    ("unknown principal key", {"principals": [{"name": "b", "token": TOKEN, "role": "x"}]},
     "principals[0].role", ["unknown key", "name, roles, token"]),
    ("principal without a name", {"principals": [{"token": TOKEN}]}, "principals[0].name",
     ["required"]),
    ("bad principal name", {"principals": [{"name": "eng b", "token": TOKEN}]},
     "principals[0].name", ["'eng b'", "letters, digits"]),
    ("the sandbox's own name", {"principals": [{"name": "Sandbox", "token": TOKEN}]},
     "principals[0].name", ["'Sandbox'", "sandbox's own principal"]),
    ("duplicate principal", {"principals": [{"name": "b", "token": TOKEN},
                                            {"name": "B", "token": TOKEN + "x"}]},
     "principals[1].name", ["'B'", "principals[0]", "unique"]),
    ("short token", {"principals": [{"name": "b", "token": "short"}]}, "principals[0].token",
     ["at least 16 characters"]),
    ("token with a space", {"principals": [{"name": "b", "token": "has a space in it, long"}]},
     "principals[0].token", ["not a usable token"]),
    ("shared token", {"principals": [{"name": "a", "token": TOKEN},
                                     {"name": "b", "token": TOKEN}]},
     "principals[1].token", ["principals[0]", "its own"]),
]


@pytest.mark.parametrize(("tables", "path", "fragments"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_name_the_field_and_what_is_allowed(
    tables: dict[str, Any], path: str, fragments: list[str]
) -> None:
    message = refusal(fleet_with(**tables))
    assert message.startswith(f"{path}: "), message
    for fragment in fragments:
        assert fragment in message, message
    assert TOKEN not in message
