"""The sandbox's Resource Graph: request handling, paging, the KQL subset, errors, the spec."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft4Validator

from core.sandbox.graph import GraphQueryError, execute_query
from tests.sandbox.openapi import SPECS_DIR

SPEC_DIR = SPECS_DIR / "resourcegraph" / "stable" / "2024-04-01"
SUB_A = "11111111-aaaa-4aaa-8aaa-111111111111"
SUB_B = "22222222-bbbb-4bbb-8bbb-222222222222"
TENANT = "99999999-0000-4000-8000-999999999999"

# The three queries of the reference's section 6.5, verbatim.
VM_QUERY = """Resources
| where type =~ 'microsoft.compute/virtualmachines'
| extend powerState = tostring(properties.extended.instanceView.powerState.code),   // e.g. "PowerState/running"
         osType     = tostring(properties.storageProfile.osDisk.osType),            // "Linux" | "Windows"
         vmSize     = tostring(properties.hardwareProfile.vmSize)
| project id, name, resourceGroup, subscriptionId, location, powerState, osType, vmSize, tags
| order by id asc
"""  # noqa: E501
ARC_QUERY = """Resources
| where type =~ 'microsoft.hybridcompute/machines'
| extend status = tostring(properties.status),                 // Connected | Disconnected | Error | Expired
         agentVersion = tostring(properties.agentVersion),
         osType = tostring(properties.osType),                  // "windows" | "linux" (lowercase)
         osName = tostring(properties.osName),
         lastStatusChange = todatetime(properties.lastStatusChange)
| project id, name, resourceGroup, subscriptionId, location, status, agentVersion, osType, osName, lastStatusChange, tags
| order by id asc
"""  # noqa: E501
UNION_QUERY = """Resources
| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.hybridcompute/machines')
| extend machineKind = iff(type =~ 'microsoft.compute/virtualmachines', 'vm', 'arc'),   // not 'kind': Resources already has a kind column
         os = tolower(coalesce(tostring(properties.storageProfile.osDisk.osType), tostring(properties.osType))),
         state = coalesce(tostring(properties.extended.instanceView.powerState.code), tostring(properties.status))
| where tags['env'] =~ 'prod'       // tag filter example
| project id, name, machineKind, os, state, location, resourceGroup, subscriptionId, tags
"""  # noqa: E501


def _vm(sub: str, rg: str, name: str, os: str, power: str | None, size: str,
        tags: dict[str, str] | None, location: str = "eastus") -> dict[str, Any]:
    props: dict[str, Any] = {"hardwareProfile": {"vmSize": size},
                             "storageProfile": {"osDisk": {"osType": os}}}
    if power is not None:
        props["extended"] = {"instanceView": {"powerState": {"code": power}}}
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/"
                  f"virtualMachines/{name}",
            "name": name, "type": "microsoft.compute/virtualmachines", "tenantId": TENANT,
            "kind": "", "location": location, "resourceGroup": rg, "subscriptionId": sub,
            "managedBy": "", "sku": None, "plan": None, "properties": props, "tags": tags,
            "identity": None, "zones": None, "extendedLocation": None}


def _arc(sub: str, rg: str, name: str, os: str, status: str, tags: dict[str, str] | None,
         changed: str | None, location: str = "westeurope") -> dict[str, Any]:
    props: dict[str, Any] = {"status": status, "agentVersion": "1.40.02664.1629", "osType": os,
                             "osName": f"{os}-os"}
    if changed is not None:
        props["lastStatusChange"] = changed
    return {"id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.HybridCompute/"
                  f"machines/{name}",
            "name": name, "type": "microsoft.hybridcompute/machines", "tenantId": TENANT,
            "location": location, "resourceGroup": rg, "subscriptionId": sub,
            "properties": props, "tags": tags}  # the other columns are simply absent


RESOURCES: list[dict[str, Any]] = [
    _vm(SUB_A, "rg-web", "web-01", "Linux", "PowerState/running", "Standard_B2s", {"env": "prod"}),
    _arc(SUB_B, "rg-edge", "edge-02", "windows", "Disconnected", {"env": "PROD"},
         "2024-05-02T08:00:00Z"),
    _vm(SUB_B, "rg-db", "db-01", "Linux", "PowerState/running", "Standard_D4s_v5", {"env": "dev"},
        "northeurope"),
    {"id": f"/subscriptions/{SUB_A}/resourceGroups/rg-web/providers/Microsoft.Compute/disks/"
           "web-01_OsDisk",
     "name": "web-01_OsDisk", "type": "microsoft.compute/disks", "location": "eastus",
     "resourceGroup": "rg-web", "subscriptionId": SUB_A, "properties": {"diskSizeGB": 30},
     "tags": {"env": "prod"}},
    _arc(SUB_A, "rg-edge", "edge-01", "linux", "Connected", {"env": "prod", "owner": "ops"},
         "2024-05-01T10:00:00.1234567Z"),
    _vm(SUB_A, "rg-web", "web-02", "Windows", "PowerState/deallocated", "Standard_B2s",
        {"env": "Prod"}),
    _vm(SUB_B, "rg-db", "db-02", "Linux", None, "Standard_D4s_v5", {}),
    _arc(SUB_B, "rg-edge", "edge-03", "linux", "Expired", None, None),
    _arc(SUB_A, "RG-Edge", "edge-04", "windows", "Error", {"env": "test"}, "2023-12-31T23:59:59Z"),
]
NAMES = [r["name"] for r in RESOURCES]


def run(query: str, **request: Any) -> dict[str, Any]:
    return execute_query({"query": query, **request}, RESOURCES)


def names(query: str, **request: Any) -> list[str]:
    return [row["name"] for row in run(query, **request)["data"]]


def error(request: dict[str, Any]) -> GraphQueryError:
    with pytest.raises(GraphQueryError) as caught:
        execute_query(request, RESOURCES)
    return caught.value


def _untyped_object_is_any(node: Any) -> Any:
    # AutoRest reads {"type": "object"} with no properties as "any JSON value": ARG's `data` (an
    # array in objectArray format) and its row cells rely on that. Draft 4 would demand objects.
    if isinstance(node, list):
        return [_untyped_object_is_any(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _untyped_object_is_any(value) for key, value in node.items()}
    if out.get("type") == "object" and not {"properties", "additionalProperties",
                                            "allOf"} & out.keys():
        del out["type"]
    return out


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


@pytest.fixture(scope="module")
def validator() -> Any:
    spec = json.loads((SPEC_DIR / "resourcegraph.json").read_text())
    definitions = _untyped_object_is_any(spec["definitions"])

    def for_definition(name: str) -> Draft4Validator:
        return Draft4Validator({**definitions[name], "definitions": definitions})
    return for_definition


# -- the reference queries -------------------------------------------------------------------------

def test_vm_query_selects_vms_ordered_by_id_with_computed_columns() -> None:
    result = run(VM_QUERY)
    assert [row["name"] for row in result["data"]] == ["web-01", "web-02", "db-01", "db-02"]
    assert [row["id"] for row in result["data"]] == sorted(row["id"] for row in result["data"])
    assert result["totalRecords"] == result["count"] == 4
    assert result["resultTruncated"] == "false" and "$skipToken" not in result
    first, last = result["data"][0], result["data"][-1]
    assert list(first) == ["id", "name", "resourceGroup", "subscriptionId", "location",
                           "powerState", "osType", "vmSize", "tags"]
    assert first == {**{k: RESOURCES[0][k] for k in ("id", "name", "resourceGroup",
                                                      "subscriptionId", "location", "tags")},
                     "powerState": "PowerState/running", "osType": "Linux",
                     "vmSize": "Standard_B2s"}
    # db-02 has no instance view: the missing path is null and tostring(null) is "".
    assert (last["name"], last["powerState"], last["tags"]) == ("db-02", "", {})


def test_arc_query_orders_ids_ordinally_and_passes_datetimes_through() -> None:
    data = run(ARC_QUERY)["data"]
    # Ordinal order: "RG-Edge" sorts before "rg-edge" within subscription A.
    assert [row["name"] for row in data] == ["edge-04", "edge-01", "edge-02", "edge-03"]
    assert {row["name"]: row["status"] for row in data} == {
        "edge-04": "Error", "edge-01": "Connected", "edge-02": "Disconnected",
        "edge-03": "Expired"}
    edge01 = data[1]
    assert edge01["osType"] == "linux" and edge01["osName"] == "linux-os"
    assert edge01["agentVersion"] == "1.40.02664.1629"
    assert edge01["lastStatusChange"] == "2024-05-01T10:00:00.1234567Z"
    assert data[3]["lastStatusChange"] is None and data[3]["tags"] is None


def test_union_query_normalises_kind_os_and_state_and_filters_tags() -> None:
    data = run(UNION_QUERY)["data"]
    got = [(row["name"], row["machineKind"], row["os"], row["state"]) for row in data]
    # No order operator: input order. env is prod/PROD/Prod; the disk is not a machine.
    assert got == [
        ("web-01", "vm", "linux", "PowerState/running"),
        ("edge-02", "arc", "windows", "Disconnected"),
        ("edge-01", "arc", "linux", "Connected"),
        ("web-02", "vm", "windows", "PowerState/deallocated"),
    ]
    assert list(data[0]) == ["id", "name", "machineKind", "os", "state", "location",
                             "resourceGroup", "subscriptionId", "tags"]


def test_spec_basic_example_query_shape() -> None:
    result = run("Resources | project id, name, type, location, tags | limit 3")
    assert result["count"] == result["totalRecords"] == 3
    assert [list(row) for row in result["data"]] == [["id", "name", "type", "location",
                                                      "tags"]] * 3
    assert result["facets"] == [] and result["resultTruncated"] == "false"


# -- paging --------------------------------------------------------------------------------------

@pytest.mark.parametrize("top", [1, 2, 3, 4, 8, 9, 10])
def test_skip_token_pages_until_exhaustion_in_order(top: int) -> None:
    query = "Resources | order by name asc | project id, name"
    expected = sorted(NAMES)
    seen: list[str] = []
    result = run(query, options={"$top": top, "$skip": 0})
    while True:
        assert result["totalRecords"] == len(RESOURCES)
        assert result["count"] == len(result["data"]) <= top
        assert result["resultTruncated"] == "false"
        seen += [row["name"] for row in result["data"]]
        if "$skipToken" not in result:
            break
        result = run(query, options={"$skipToken": result["$skipToken"]})
    assert seen == expected


def test_first_page_example_gets_a_token_and_next_page_needs_only_the_token() -> None:
    query = "Resources | where name contains 'e' | project id, name, type, location"
    first = run(query, subscriptions=[SUB_A, SUB_B], options={"$top": 3, "$skip": 0})
    assert first["count"] == 3 and isinstance(first["$skipToken"], str)
    second = run(query, subscriptions=[SUB_A, SUB_B],
                 options={"$skipToken": first["$skipToken"]})
    assert [r["name"] for r in second["data"]] == [n for n in NAMES if "e" in n][3:6]


def test_top_and_skip_override_the_token() -> None:
    query = "Resources | project id, name"
    token = run(query, options={"$top": 2})["$skipToken"]
    assert names(query, options={"$skipToken": token}) == NAMES[2:4]
    assert names(query, options={"$skipToken": token, "$top": 3}) == NAMES[2:5]
    assert names(query, options={"$skipToken": token, "$skip": 5}) == NAMES[5:7]


def test_skip_alone_and_skip_past_the_end() -> None:
    assert names("Resources", options={"$skip": 7}) == NAMES[7:]
    past = run("Resources", options={"$skip": 50})
    assert (past["count"], past["totalRecords"], past["data"]) == (0, len(RESOURCES), [])
    assert "$skipToken" not in past


def test_default_page_size_is_100() -> None:
    many = [{**RESOURCES[0], "id": f"/x/{i:03}", "name": f"n{i:03}"} for i in range(250)]
    result = execute_query({"query": "Resources"}, many)
    assert (result["count"], result["totalRecords"]) == (100, 250) and "$skipToken" in result


def test_skip_token_for_another_query_or_scope_is_refused() -> None:
    token = run("Resources | project id", options={"$top": 2})["$skipToken"]
    for request in ({"query": "Resources | project id, name", "options": {"$skipToken": token}},
                    {"query": "Resources | project id", "subscriptions": [SUB_A],
                     "options": {"$skipToken": token}}):
        err = error(request)
        assert err.field == "options.$skipToken" and "different query or scope" in err.message
    for bad in ("not-a-token!", "eyJ4IjogMX0", 42, ""):
        err = error({"query": "Resources", "options": {"$skipToken": bad}})
        assert err.code == "InvalidSkipToken" and "options.$skipToken" in err.message


def test_query_without_id_is_truncated_instead_of_paged() -> None:
    result = run("Resources | project name", options={"$top": 3})
    assert result["resultTruncated"] == "true" and "$skipToken" not in result
    assert (result["count"], result["totalRecords"]) == (3, len(RESOURCES))
    whole = run("Resources | project name")
    assert whole["resultTruncated"] == "false" and whole["count"] == len(RESOURCES)


# -- request fields ------------------------------------------------------------------------------

@pytest.mark.parametrize("top", [0, 1001, -1, "3", 2.5, True])
def test_top_out_of_range_is_400_naming_the_option(top: Any) -> None:
    err = error({"query": "Resources", "options": {"$top": top}})
    assert err.field == "options.$top" and "options.$top" in err.message
    assert "1 to 1000" in err.message
    assert err.body["error"]["code"] == "BadRequest"


def test_top_bounds_are_inclusive() -> None:
    assert run("Resources", options={"$top": 1})["count"] == 1
    assert run("Resources", options={"$top": 1000})["count"] == len(RESOURCES)


@pytest.mark.parametrize(("request_body", "field"), [
    ({"query": "Resources", "options": {"$skip": -1}}, "options.$skip"),
    ({"query": "Resources", "options": {"resultFormat": "csv"}}, "options.resultFormat"),
    ({"query": "Resources", "options": {"authorizationScopeFilter": "Up"}},
     "options.authorizationScopeFilter"),
    ({"query": "Resources", "options": {"allowPartialScopes": "yes"}},
     "options.allowPartialScopes"),
    ({"query": "Resources", "options": []}, "options"),
    ({"query": "Resources", "subscriptions": SUB_A}, "subscriptions"),
    ({"query": "Resources", "subscriptions": [SUB_A, 7]}, "subscriptions"),
    ({"query": "Resources", "managementGroups": "mg1"}, "managementGroups"),
    ({"query": "Resources", "facets": {}}, "facets"),
    ({"subscriptions": [SUB_A]}, "query"),
    ({"query": "   "}, "query"),
])
def test_bad_request_fields_name_the_field(request_body: dict[str, Any], field: str) -> None:
    err = error(request_body)
    assert err.field == field and err.message.startswith(f"{field}: ")


def test_subscriptions_filter_rows_case_insensitively() -> None:
    got = names("Resources", subscriptions=[SUB_B.upper()])
    assert got == [r["name"] for r in RESOURCES if r["subscriptionId"] == SUB_B]
    assert names("Resources", subscriptions=[]) == NAMES  # empty: tenant scope
    assert names("Resources", subscriptions=["00000000-0000-0000-0000-000000000000"]) == []


def test_management_groups_and_facets_are_accepted_and_ignored() -> None:
    result = run("Resources | project id", managementGroups=["mg1"],
                 facets=[{"expression": "location", "options": {"$top": 3}}],
                 options={"resultFormat": "ObjectArray", "allowPartialScopes": True,
                          "authorizationScopeFilter": "AtScopeExact", "unknownOption": 1})
    assert result["count"] == len(RESOURCES) and result["facets"] == []


def test_table_format(validator: Any) -> None:
    result = run("Resources | where type =~ 'microsoft.hybridcompute/machines' "
                 "| extend up = properties.status == 'Connected', n = strlen(name), "
                 "changed = todatetime(properties.lastStatusChange), r = toreal('1.5') "
                 "| project id, name, up, n, changed, r, tags | take 2",
                 options={"resultFormat": "table"})
    table = result["data"]
    assert table["columns"] == [
        {"name": "id", "type": "string"}, {"name": "name", "type": "string"},
        {"name": "up", "type": "boolean"}, {"name": "n", "type": "integer"},
        {"name": "changed", "type": "datetime"}, {"name": "r", "type": "number"},
        {"name": "tags", "type": "object"}]
    assert table["rows"][0] == [RESOURCES[1]["id"], "edge-02", False, 7, "2024-05-02T08:00:00Z",
                                1.5, {"env": "PROD"}]
    assert table["rows"][1][1:4] == ["edge-01", True, 7]
    validator("QueryResponse").validate(result)
    validator("Table").validate(table)


# -- the KQL subset ------------------------------------------------------------------------------

def test_case_insensitive_and_sensitive_comparisons() -> None:
    assert names("Resources | where type =~ 'Microsoft.Compute/VirtualMachines'") == \
        ["web-01", "db-01", "web-02", "db-02"]
    assert names("Resources | where type == 'Microsoft.Compute/VirtualMachines'") == []
    assert names("Resources | where type in~ ('MICROSOFT.HYBRIDCOMPUTE/MACHINES')") == \
        ["edge-02", "edge-01", "edge-03", "edge-04"]
    assert names("Resources | where type in ('MICROSOFT.HYBRIDCOMPUTE/MACHINES')") == []
    assert names("Resources | where name !in~ ('WEB-01', 'web-02', \"DB-01\") "
                 "and type !~ 'MICROSOFT.COMPUTE/DISKS'") == \
        ["edge-02", "edge-01", "db-02", "edge-03", "edge-04"]
    assert names("Resources | where name !in ('web-01') | take 1") == ["edge-02"]


def test_string_operators() -> None:
    assert names("Resources | where name contains 'WEB'") == ["web-01", "web-01_OsDisk",
                                                               "web-02"]
    assert names("Resources | where name contains_cs 'WEB'") == []
    assert names("Resources | where name has 'Edge'") == ["edge-02", "edge-01", "edge-03",
                                                         "edge-04"]
    assert names("Resources | where name has 'edg'") == []
    assert names("Resources | where name startswith 'DB' or name endswith '-04'") == \
        ["db-01", "db-02", "edge-04"]
    assert names("Resources | where name !contains 'EDGE' and name !startswith 'db' "
                 "and not(name !has 'web') and name !endswith '02'") == ["web-01", "web-01_OsDisk"]


def test_order_is_desc_by_default_and_stable() -> None:
    assert names("Resources | order by name") == sorted(NAMES, reverse=True)
    assert names("Resources | sort by name asc") == sorted(NAMES)
    by_sub = names("Resources | order by subscriptionId asc, name desc")
    assert by_sub == sorted([r["name"] for r in RESOURCES if r["subscriptionId"] == SUB_A],
                            reverse=True) + sorted(
        [r["name"] for r in RESOURCES if r["subscriptionId"] == SUB_B], reverse=True)
    # Equal keys keep input order; nulls sort last descending, first ascending.
    assert names("Resources | order by location asc | take 3") == ["web-01", "web-01_OsDisk",
                                                                   "web-02"]
    changed = "Resources | extend c = todatetime(properties.lastStatusChange) | where type " \
        "contains 'hybrid' | order by c {}"
    assert names(changed.format("desc")) == ["edge-02", "edge-01", "edge-04", "edge-03"]
    assert names(changed.format("asc")) == ["edge-03", "edge-04", "edge-01", "edge-02"]
    assert names(changed.format("asc nulls last")) == ["edge-04", "edge-01", "edge-02",
                                                       "edge-03"]
    assert names("Resources | top 2 by name asc") == sorted(NAMES)[:2]


def test_missing_properties_are_null() -> None:
    vm = "Resources | where type =~ 'microsoft.compute/virtualmachines' "
    assert names(vm + "| where isnull(properties.extended.instanceView)") == ["db-02"]
    assert names(vm + "| where isnotnull(properties.nope.deeper['x'])") == []
    # == with one null side is false and != true; tostring(null) is "".
    assert names(vm + "| where properties.nope == 'x'") == []
    assert len(names(vm + "| where properties.nope != 'x'")) == 4
    assert len(names(vm + "| where tostring(properties.nope) == ''")) == 4
    assert names("Resources | where isempty(tags['env'])") == ["db-02", "edge-03"]
    assert names("Resources | where isempty(kind) and isnotempty(location) | take 1") == \
        ["web-01"]
    row = run("Resources | project id, sku, managedBy, zones | take 1")["data"][0]
    assert row == {"id": RESOURCES[0]["id"], "sku": None, "managedBy": "", "zones": None}


def test_extend_project_rename_count_and_functions() -> None:
    row = run("Resources | extend a = toupper(name), b = strcat(a, '/', tolower('X')) "
              "| extend size = toint('42'), flag = tobool('TRUE'), big = size > 40 "
              "| project-rename machine = name | where machine == 'db-01' "
              "| project id, machine, b, size, flag, big, z = iif(big, 'y', 'n'), tags.env, "
              "['location']")["data"]
    assert row == [{"id": RESOURCES[2]["id"], "machine": "db-01", "b": "DB-01/x", "size": 42,
                    "flag": True, "big": True, "z": "y", "tags_env": "dev",
                    "location": "northeurope"}]
    away = run("Resources | project-away properties, sku, plan, identity, zones, tenantId "
               "| take 1")["data"][0]
    assert list(away) == ["id", "name", "type", "kind", "location", "resourceGroup",
                          "subscriptionId", "managedBy", "tags", "extendedLocation"]
    counted = run("Resources | where subscriptionId == '" + SUB_A + "' | count")
    assert counted["data"] == [{"Count": 5}]
    assert names("Resources | limit 2") == NAMES[:2]
    assert names("Resources | where properties.diskSizeGB >= 30 and properties.diskSizeGB < 31"
                 ) == ["web-01_OsDisk"]
    assert names("Resources | where name == @'db-01' or name == \"edge\\u002d03\"") == \
        ["db-01", "edge-03"]


def test_input_resources_are_not_shared_with_the_response() -> None:
    before = copy.deepcopy(RESOURCES)
    result = run("Resources | extend x = 1")
    result["data"][0]["tags"]["env"] = "mutated"
    assert before == RESOURCES


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "code", "fragments"), [
    ("Resources | join (Resources) on id", "UnsupportedOperator",
     ["'join'", "[1,13]", "where, extend, project"]),
    ("Resources\n| mv-expand tags", "UnsupportedOperator", ["'mv-expand'", "[2,3]"]),
    ("Resources | extend x = parse_json(name)", "UnknownFunction",
     ["'parse_json'", "tostring", "coalesce"]),
    ("ResourceContainers | project id", "DisallowedLogicalTableName",
     ["'ResourceContainers'", "Resources"]),
    ("Resources | where name ==", "ParserFailure", ["<end of query>", "expected an expression"]),
    ("Resources | where (name == 'a'", "ParserFailure", ["expected ')'"]),
    ("Resources | where name == 'a", "ParserFailure", ["unterminated string", "[1,27]"]),
    ("Resources | where name = 'a'", "ParserFailure", ["'='", "'=='"]),
    ("Resources | project", "ParserFailure", ["<end of query>"]),
    ("Resources | order name", "ParserFailure", ["'name'", "'by'"]),
    ("Resources | take 2.5", "ParserFailure", ["'2.5'", "whole number"]),
    ("Resources | where name == 'a' name", "ParserFailure", ["'name'", "[1,31]"]),
    ("Resources | where name matchez 'a'", "ParserFailure", ["'matchez'"]),
    ("Resources | where name !hass 'a'", "ParserFailure", ["'!hass'"]),
    ("Resources | where name == 'a\\q'", "ParserFailure", ["unknown escape"]),
    ("Resources | where name == 'a' # 1", "ParserFailure", ["'#'", "unexpected character"]),
    ("| where name == 'a'", "ParserFailure", ["'|'", "Resources"]),
    ("Resources | where Name == 'a'", "UnknownColumn", ["'Name'", "name, type"]),
    ("Resources | project id | where name == 'a'", "UnknownColumn", ["'name'", "are: id"]),
    ("Resources | project-away nope", "UnknownColumn", ["'nope'"]),
    ("Resources | where name", "InvalidArgument", ["boolean", "string"]),
    ("Resources | extend x = name.first", "InvalidArgument", ["'.'", "string"]),
    ("Resources | extend x = iff(true, 1)", "InvalidArgument", ["iff", "3 arguments"]),
    ("Resources | project id, id", "InvalidArgument", ["twice"]),
    ("Resources | project tolower(name)", "ParserFailure", ["'tolower'", "name = expression"]),
    ("Resources | where not name == 'a'", "ParserFailure", ["'not'", "not(expr)"]),
    ("Resources | where name in ()", "ParserFailure", ["')'", "expected an expression"]),
    ("Resources | Where name == 'a'", "UnsupportedOperator", ["'Where'"]),
])
def test_query_errors_name_the_token(query: str, code: str, fragments: list[str],
                                     validator: Any) -> None:
    err = error({"query": query})
    assert err.field == "query" and err.code == code
    for fragment in fragments:
        assert fragment in err.message
    details = err.body["error"]["details"]
    assert [d["code"] for d in details] == ["InvalidQuery", code]
    assert details[1]["message"] == err.body["error"]["message"] == err.message
    validator("ErrorResponse").validate(err.body)


def test_request_error_body_shape(validator: Any) -> None:
    body = error({"query": "Resources", "options": {"$top": 0}}).body
    assert body["error"]["code"] == "BadRequest"
    assert [d["code"] for d in body["error"]["details"]] == ["InvalidRequestContent"] * 2
    validator("ErrorResponse").validate(body)


# -- the spec ------------------------------------------------------------------------------------

def test_spec_definitions_are_self_contained() -> None:
    spec = json.loads((SPEC_DIR / "resourcegraph.json").read_text())
    refs = _refs(spec["definitions"])
    assert refs and all(ref.startswith("#/definitions/") for ref in refs)


def test_spec_examples_validate_with_the_same_validator(validator: Any) -> None:
    # Proves the "untyped object is any" reading accepts what Microsoft's own examples return.
    for path in sorted((SPEC_DIR / "examples").glob("Resources*.json")):
        example = json.loads(path.read_text())
        validator("QueryRequest").validate(example["parameters"]["query"])
        validator("QueryResponse").validate(example["responses"]["200"]["body"])


def test_responses_validate_against_query_response(validator: Any) -> None:
    check = validator("QueryResponse")
    check.validate(run(UNION_QUERY))
    paged = run(VM_QUERY, options={"$top": 2, "$skip": 0})
    assert "$skipToken" in paged
    check.validate(paged)
    check.validate(run("Resources | project name", options={"$top": 2}))
    check.validate(run("Resources | count", options={"resultFormat": "table"}))
    request = {"query": VM_QUERY, "subscriptions": [SUB_A],
               "options": {"$top": 2, "$skip": 0, "resultFormat": "objectArray"}}
    validator("QueryRequest").validate(request)


# -- summarize -----------------------------------------------------------------------------------

def test_summarize_count_by_a_column_counts_each_group() -> None:
    result = run("Resources | summarize count() by type")

    assert result["data"] == [
        {"type": "microsoft.compute/virtualmachines", "count_": 4},
        {"type": "microsoft.hybridcompute/machines", "count_": 4},
        {"type": "microsoft.compute/disks", "count_": 1},
    ]
    assert result["totalRecords"] == result["count"] == 3
    # No id column: a summary is not paged with a $skipToken.
    assert "$skipToken" not in result


def test_summarize_counts_machines_per_os_the_way_a_fleet_overview_does() -> None:
    query = """Resources
| where type in~ ('microsoft.compute/virtualmachines', 'microsoft.hybridcompute/machines')
| extend os = tolower(coalesce(tostring(properties.storageProfile.osDisk.osType), tostring(properties.osType)))
| summarize machines = count(), running = countif(properties.extended.instanceView.powerState.code == 'PowerState/running') by os, subscriptionId
| order by os asc, subscriptionId asc"""  # noqa: E501

    data = run(query)["data"]

    assert data == [
        {"os": "linux", "subscriptionId": SUB_A, "machines": 2, "running": 1},
        {"os": "linux", "subscriptionId": SUB_B, "machines": 3, "running": 1},
        {"os": "windows", "subscriptionId": SUB_A, "machines": 2, "running": 0},
        {"os": "windows", "subscriptionId": SUB_B, "machines": 1, "running": 0},
    ]


def test_summarize_without_by_gives_one_row_even_over_nothing() -> None:
    assert run("Resources | summarize count()")["data"] == [{"count_": len(RESOURCES)}]
    assert run("Resources | where name == 'nobody' | summarize count()")["data"] == \
        [{"count_": 0}]
    assert run("Resources | where name == 'nobody' | summarize count() by type")["data"] == []
    assert run("Resources | where name == 'nobody' | count")["data"] == [{"Count": 0}]


def test_summarize_other_aggregates_and_by_without_aggregates() -> None:
    data = run("Resources | where type =~ 'microsoft.compute/virtualmachines' "
               "| summarize dcount(location), first = min(name), last = max(name), "
               "n = sum(strlen(name))")["data"]
    assert data == [{"dcount_location": 2, "first": "db-01", "last": "web-02", "n": 22}]
    groups = run("Resources | summarize by resourceGroup | order by resourceGroup asc")["data"]
    assert groups == [{"resourceGroup": g}
                      for g in ("RG-Edge", "rg-db", "rg-edge", "rg-web")]


def test_summarize_result_feeds_later_operators() -> None:
    data = run("Resources | summarize n = count() by location | where n > 1 "
               "| top 1 by n desc | project location, n")["data"]
    assert data == [{"location": "eastus", "n": 4}]


def test_summarize_table_format_names_the_columns_as_arg_does(validator: Any) -> None:
    result = run("Resources | summarize count() by location", options={"resultFormat": "table"})

    assert result["data"]["columns"] == [{"name": "location", "type": "string"},
                                         {"name": "count_", "type": "integer"}]
    validator("QueryResponse").validate(result)
    validator("Table").validate(result["data"])
    validator("QueryResponse").validate(run("Resources | summarize count() by type"))


@pytest.mark.parametrize(("query", "code", "says"), [
    ("Resources | summarize count() by properties", "InvalidArgument", "dynamic"),
    ("Resources | summarize avg(name)", "UnknownFunction", "supports: count"),
    ("Resources | summarize count(name)", "InvalidArgument", "takes 0"),
    ("Resources | summarize by tolower(name)", "ParserFailure", "name this expression"),
    ("Resources | summarize", "ParserFailure", "aggregate"),
    ("Resources | summarize count() by nosuch", "UnknownColumn", "nosuch"),
])
def test_summarize_errors_name_the_problem(query: str, code: str, says: str) -> None:
    err = error({"query": query})
    assert err.code == code
    assert says in err.message
