"""The sandbox's RBAC: fleet-file principals with roles, ARM's 403 and the permissions read.

A Reader sees the fleet and run commands but a run command PUT (or the action API's POST)
is refused with ARM's ``AuthorizationFailed`` naming the action and the scope, before
anything runs; an administrator on one resource group runs there only; a custom role with
only ``runCommands/read`` lists run commands and nothing else. The permissions endpoint
answers per scope, and fleetrun's reading of it (core/azure/permissions.py) marks the same
machines runnable that the sandbox lets run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.azure.permissions import (
    ARC_ROLE,
    ARC_RUN,
    Access,
    fleet_verdicts,
    parse_permissions,
    summary_line,
)
from core.model import Machine, MachineKind, OsType
from core.sandbox.fleet import FleetFileError, FleetSpec
from tests.sandbox.arm_client import ARC, COMPUTE, RG, SUB, Api, make_fleet, sandbox_api
from tests.sandbox.test_access import assert_nothing_ran

READER_TOKEN = "reader-token-0123456789abcdef"
OPS_TOKEN = "ops-admin-token-0123456789abcdef"
LISTER_TOKEN = "lister-token-0123456789abcdef"
OPS_RG = "rg-ops"
SCRIPT = {"source": {"script": "echo ran"}}
PERMISSIONS = "2022-04-01"
SUB_SCOPE = f"/subscriptions/{SUB}"


def _fleet() -> FleetSpec:
    simulated = {"executor": "simulated", "simulate": {"duration": 0, "lines": 1}}
    return make_fleet(
        {"name": "arc1", "kind": "arc", **simulated},
        {"name": "arc2", "kind": "arc", "resource_group": OPS_RG, **simulated},
        {"name": "vm1", "kind": "vm", **simulated},
        principals=[
            {"name": "reader", "token": READER_TOKEN,
             "roles": [{"role": "Reader", "scope": SUB_SCOPE}]},
            {"name": "ops-admin", "token": OPS_TOKEN,
             "roles": [{"role": "Reader", "scope": SUB_SCOPE},
                       {"role": "Azure Connected Machine Resource Administrator",
                        "scope": f"{SUB_SCOPE}/resourceGroups/{OPS_RG}"}]},
            {"name": "lister", "token": LISTER_TOKEN,
             "roles": [{"role": "run command lister", "scope": SUB_SCOPE}]},
        ],
        roles=[{"name": "run command lister",
                "actions": ["Microsoft.HybridCompute/machines/runCommands/read"]}],
    )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with sandbox_api(_fleet(), tmp_path) as api:
        yield api


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _put(api: Api, machine_path: str, token: str, name: str = "cmd") -> httpx.Response:
    return await api.client.put(f"{machine_path}/runCommands/{name}", params={"api-version": ARC},
                                headers=_as(token),
                                json={"location": "westeurope", "properties": SCRIPT})


def _assert_authorization_failed(response: httpx.Response, client: str, action: str,
                                 scope: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "AuthorizationFailed"
    message: str = error["message"]
    assert message.startswith(f"The client '{client}' with object id '")
    assert (f"does not have authorization to perform action '{action}' over scope '{scope}' "
            "or the scope is invalid. If access was recently granted, please refresh your "
            "credentials.") in message


async def test_a_reader_sees_the_fleet_but_its_run_command_put_is_refused(api: Api) -> None:
    listed = await api.client.get(f"{SUB_SCOPE}/providers/Microsoft.HybridCompute/machines",
                                  params={"api-version": ARC}, headers=_as(READER_TOKEN))
    assert listed.status_code == 200, listed.text
    assert {m["name"] for m in listed.json()["value"]} == {"arc1", "arc2"}
    history = await api.client.get(f"{Api.arc_path('arc1')}/runCommands",
                                   params={"api-version": ARC}, headers=_as(READER_TOKEN))
    assert history.status_code == 200, history.text

    refused = await _put(api, Api.arc_path("arc1"), READER_TOKEN)
    _assert_authorization_failed(refused, "reader", ARC_RUN,
                                 f"{Api.arc_path('arc1')}/runCommands/cmd")
    assert_nothing_ran(api)


async def test_a_reader_cannot_use_the_vm_action_api_either(api: Api) -> None:
    refused = await api.client.post(f"{Api.vm_path('vm1')}/runCommand",
                                    params={"api-version": COMPUTE}, headers=_as(READER_TOKEN),
                                    json={"commandId": "RunShellScript", "script": ["echo"]})
    _assert_authorization_failed(refused, "reader",
                                 "Microsoft.Compute/virtualMachines/runCommand/action",
                                 Api.vm_path("vm1"))
    assert_nothing_ran(api)


async def test_an_administrator_of_one_resource_group_runs_there_only(api: Api) -> None:
    ran = await _put(api, Api.arc_path("arc2", OPS_RG), OPS_TOKEN)
    assert ran.status_code in (200, 201), ran.text
    refused = await _put(api, Api.arc_path("arc1"), OPS_TOKEN)
    _assert_authorization_failed(refused, "ops-admin", ARC_RUN,
                                 f"{Api.arc_path('arc1')}/runCommands/cmd")
    body = await api.wait_for(Api.arc_path("arc2", OPS_RG), "cmd")
    assert body["properties"]["instanceView"]["executionState"] == "Succeeded"


async def test_a_custom_role_with_only_run_command_read_lists_and_nothing_more(
    api: Api,
) -> None:
    listed = await api.client.get(f"{Api.arc_path('arc1')}/runCommands",
                                  params={"api-version": ARC}, headers=_as(LISTER_TOKEN))
    assert listed.status_code == 200, listed.text
    machine = await api.client.get(Api.arc_path("arc1"), params={"api-version": ARC},
                                   headers=_as(LISTER_TOKEN))
    _assert_authorization_failed(machine, "lister", "Microsoft.HybridCompute/machines/read",
                                 Api.arc_path("arc1"))
    _assert_authorization_failed(await _put(api, Api.arc_path("arc1"), LISTER_TOKEN),
                                 "lister", ARC_RUN, f"{Api.arc_path('arc1')}/runCommands/cmd")


async def _permissions(api: Api, scope: str, token: str) -> Any:
    answer = await api.client.get(f"{scope}/providers/Microsoft.Authorization/permissions",
                                  params={"api-version": PERMISSIONS}, headers=_as(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_permissions_read_answers_per_scope_as_fleetrun_reads_it(api: Api) -> None:
    rg_ops = f"{SUB_SCOPE}/resourceGroups/{OPS_RG}"
    at_sub = await _permissions(api, SUB_SCOPE, OPS_TOKEN)
    assert at_sub == {"value": [{"actions": ["*/read"], "notActions": [], "dataActions": [],
                                 "notDataActions": []}]}
    at_ops = await _permissions(api, rg_ops, OPS_TOKEN)
    assert len(at_ops["value"]) == 2
    # The sandbox's own token holds Owner everywhere.
    own = await api.client.get(f"{SUB_SCOPE}/providers/Microsoft.Authorization/permissions",
                               params={"api-version": PERMISSIONS})
    assert own.json()["value"][0]["actions"] == ["*"]

    machines = [Machine(m.resource_id, m.spec.name, MachineKind.ARC, OsType.LINUX)
                for m in api.service.all_machines() if not m.is_vm]
    answers = {SUB_SCOPE: parse_permissions(at_sub), f"{SUB_SCOPE}/resourceGroups/{RG}":
               parse_permissions(await _permissions(api, f"{SUB_SCOPE}/resourceGroups/{RG}",
                                                    OPS_TOKEN)),
               rg_ops: parse_permissions(at_ops)}
    verdicts = {v.machine_id.rsplit("/", 1)[1]: v for v in fleet_verdicts(machines, answers)}
    assert verdicts["arc2"].access is Access.RUN
    assert verdicts["arc1"].access is Access.READ_ONLY
    assert summary_line(list(verdicts.values())) == (
        f"you can run on 1 of 2 machines; 1 needs `{ARC_RUN}` ({ARC_ROLE})")


async def test_the_permissions_read_wants_a_known_api_version(api: Api) -> None:
    answer = await api.client.get(f"{SUB_SCOPE}/providers/Microsoft.Authorization/permissions",
                                  params={"api-version": "2099-01-01"})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "InvalidApiVersionParameter"


@pytest.mark.parametrize(("roles", "named"), [
    ([{"role": "Janitor", "scope": "/"}], "principals[0].roles[0].role: 'Janitor' is not a role"),
    ([{"role": "Reader", "scope": "/resourceGroups/x"}],
     "principals[0].roles[0].scope: '/resourceGroups/x' is not a scope"),
    ([{"role": "Reader"}], "principals[0].roles[0].scope"),
    ("Reader", "principals[0].roles: a list"),
])
def test_a_bad_role_assignment_names_the_field(roles: object, named: str) -> None:
    with pytest.raises(FleetFileError, match=named.replace("[", r"\[")):
        make_fleet({"name": "vm1", "kind": "vm"},
                   principals=[{"name": "p", "token": READER_TOKEN, "roles": roles}])


def test_a_custom_role_may_not_take_a_built_in_name() -> None:
    with pytest.raises(FleetFileError, match=r"roles\[0\]\.name: 'reader' is already a role"):
        make_fleet({"name": "vm1", "kind": "vm"}, roles=[{"name": "reader", "actions": ["*"]}])
