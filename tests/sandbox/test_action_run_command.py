"""The action Run Command API (POST .../runCommand) and the built-in command documents.

Spoken to over plain HTTP as ``az vm run-command invoke`` would: the 202's Location URL is
followed until the ``RunCommandResult``, which is checked against the spec's schema.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx

from tests.sandbox.arm_client import COMPUTE, SUB, Api, make_fleet, sandbox_api
from tests.sandbox.openapi import spec_index

CONFLICT = ("Run command extension execution is in progress. Please wait for completion "
            "before invoking a run command.")
LOCATIONS = f"/subscriptions/{SUB}/providers/Microsoft.Compute/locations/westeurope/runCommands"


async def _invoke(api: Api, vm: str, body: dict[str, Any]) -> httpx.Response:
    return await api.client.post(f"{api.vm_path(vm)}/runCommand",
                                 params={"api-version": COMPUTE}, json=body)


async def _result(api: Api, accepted: httpx.Response, within: float = 20.0) -> httpx.Response:
    """The Location URL's answer once the run is over (202 until then)."""
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + within
    while (answer := await api.client.get(accepted.headers["Location"])).status_code == 202:
        assert time.monotonic() < deadline, f"the run did not end within {within} s"
        await asyncio.sleep(0.05)
    return answer


async def _run(api: Api, vm: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = await _result(api, await _invoke(api, vm, body))
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    spec_index().validate_response("VirtualMachines_RunCommand", 200, result)
    return result


def _linux_streams(result: dict[str, Any]) -> tuple[str, str]:
    """stdout and stderr from the Linux handler's one status message."""
    [status] = result["value"]
    assert status["code"] == "ProvisioningState/succeeded"
    message = status["message"]
    assert message.startswith("Enable succeeded: \n[stdout]\n")
    out, _, err = message.removeprefix("Enable succeeded: \n[stdout]\n").partition(
        "\n[stderr]\n")
    return out, err


LINUX = {"name": "lin", "kind": "vm", "os": "linux"}


async def test_parameters_reach_the_script_as_variables_and_positional_args(
    tmp_path: Path,
) -> None:
    async with sandbox_api(make_fleet(LINUX), tmp_path) as api:
        result = await _run(api, "lin", {
            "commandId": "RunShellScript",
            "script": ['echo "named=$greeting first=$1 second=$2"', "echo oops >&2", "exit 3"],
            "parameters": [{"name": "greeting", "value": "hello world"},
                           {"name": "other", "value": "$(touch pwned)"}]})
        out, err = _linux_streams(result)
        assert out.strip() == "named=hello world first=hello world second=$(touch pwned)"
        # A non-zero exit still 'succeeded' (reference 7.2); stderr is reported beside it.
        assert err.strip() == "oops"


async def test_each_stream_reports_only_its_last_4096_bytes(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX), tmp_path) as api:
        result = await _run(api, "lin", {"commandId": "RunShellScript", "script": [
            "head -c 10000 /dev/zero | tr '\\0' a; printf END",
            "head -c 6000 /dev/zero | tr '\\0' b >&2; printf ERR >&2"]})
        out, err = _linux_streams(result)
        assert len(out.encode()) == 4096 and out.endswith("aaaEND")
        assert len(err.encode()) == 4096 and err.endswith("bbbERR")


async def test_a_second_run_while_one_runs_gets_409_conflict(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX, {"name": "other", "kind": "vm", "os": "linux"}),
                           tmp_path) as api:
        first = await _invoke(api, "lin", {"commandId": "RunShellScript",
                                           "script": ["sleep 60"]})
        assert first.status_code == 202, first.text
        second = await _invoke(api, "lin", {"commandId": "RunShellScript",
                                            "script": ["echo again"]})
        assert second.status_code == 409, second.text
        assert second.json() == {"error": {"code": "Conflict", "message": CONFLICT}}
        # One at a time per VM, not per fleet: another VM runs meanwhile.
        out, _ = _linux_streams(await _run(api, "other", {"commandId": "RunShellScript",
                                                          "script": ["echo free"]}))
        assert out.strip() == "free"


async def test_a_finished_run_frees_the_vm_for_the_next(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX), tmp_path) as api:
        for word in ("one", "two"):
            out, _ = _linux_streams(await _run(api, "lin", {"commandId": "RunShellScript",
                                                            "script": [f"echo {word}"]}))
            assert out.strip() == word


async def test_windows_answers_stdout_and_stderr_component_statuses(tmp_path: Path) -> None:
    windows = {"name": "win", "kind": "vm", "os": "windows", "executor": "simulated",
               "simulate": {"output": "hello from {machine}\n", "error": "warned\n",
                            "duration": [0.1, 0.1]}}
    async with sandbox_api(make_fleet(windows), tmp_path) as api:
        result = await _run(api, "win", {"commandId": "RunPowerShellScript",
                                         "script": ["Write-Output hi"]})
        assert result == {"value": [
            {"code": "ComponentStatus/StdOut/succeeded", "level": "Info",
             "displayStatus": "Provisioning succeeded", "message": "hello from win\n"},
            {"code": "ComponentStatus/StdErr/succeeded", "level": "Info",
             "displayStatus": "Provisioning succeeded", "message": "warned\n"}]}


async def test_the_operation_status_url_carries_the_output_when_done(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX, pickup_delay=0.2), tmp_path) as api:
        accepted = await _invoke(api, "lin", {"commandId": "RunShellScript",
                                              "script": ["echo done"]})
        status_url = accepted.headers["Azure-AsyncOperation"]
        assert (await api.client.get(status_url)).json()["status"] == "InProgress"
        await _result(api, accepted)
        status = (await api.client.get(status_url)).json()
        assert status["status"] == "Succeeded" and status["endTime"]
        out, _ = _linux_streams(status["properties"]["output"])
        assert out.strip() == "done"


async def test_a_builtin_runs_its_own_script_with_its_parameters(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX), tmp_path) as api:
        out, _ = _linux_streams(await _run(api, "lin", {
            "commandId": "ifconfig", "parameters": [{"name": "arguments", "value": "-a"}]}))
        assert "eth0:" in out and "mtu 1500 -a" in out
        # RunShellScript without a script: its document's sample, with its defaults.
        out, _ = _linux_streams(await _run(api, "lin", {"commandId": "RunShellScript"}))
        assert out.strip() == "This is a sample script with parameters value1 value2"


async def test_refusals_before_anything_runs(tmp_path: Path) -> None:
    fleet = make_fleet(LINUX, {"name": "win", "kind": "vm", "os": "windows"},
                       {"name": "off", "kind": "vm", "os": "linux", "power": "deallocated"})
    async with sandbox_api(fleet, tmp_path) as api:
        wrong_os = await _invoke(api, "win", {"commandId": "ifconfig"})
        assert wrong_os.status_code == 400, wrong_os.text
        assert "for Linux machines" in wrong_os.json()["error"]["message"]
        wrong_os = await _invoke(api, "lin", {"commandId": "IPConfig"})
        assert wrong_os.status_code == 400 and "for Windows" in wrong_os.text
        unknown = await _invoke(api, "lin", {"commandId": "NoSuchCommand"})
        assert unknown.status_code == 404
        assert unknown.json()["error"] == {
            "code": "NotFound", "message": "The entity was not found in this Azure location."}
        deallocated = await _invoke(api, "off", {"commandId": "RunShellScript",
                                                 "script": ["echo hi"]})
        assert deallocated.status_code == 409, deallocated.text
        assert deallocated.json()["error"]["code"] == "OperationNotAllowed"
        for body in ({}, {"commandId": "RunShellScript", "script": "echo not lines"},
                     {"commandId": "RunShellScript", "parameters": [{"name": "x"}]}):
            bad = await _invoke(api, "lin", body)
            assert bad.status_code == 400, (body, bad.text)


async def test_an_agent_not_ready_fails_the_operation(tmp_path: Path) -> None:
    fleet = make_fleet({"name": "sick", "kind": "vm", "os": "linux", "agent": "not-ready"},
                       agent_timeout=0.3)
    async with sandbox_api(fleet, tmp_path) as api:
        accepted = await _invoke(api, "sick", {"commandId": "RunShellScript",
                                               "script": ["echo hi"]})
        answer = await _result(api, accepted)
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "VMAgentStatusCommunicationError"
        status = (await api.client.get(accepted.headers["Azure-AsyncOperation"])).json()
        assert status["status"] == "Failed"
        assert status["error"]["code"] == "VMAgentStatusCommunicationError"


async def test_builtin_documents_per_os_with_their_parameters(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX), tmp_path) as api:
        listed = await api.client.get(LOCATIONS, params={"api-version": COMPUTE})
        assert listed.status_code == 200
        spec_index().validate_response("VirtualMachineRunCommands_List", 200, listed.json())
        by_os: dict[str, set[str]] = {}
        for item in listed.json()["value"]:
            by_os.setdefault(item["osType"], set()).add(item["id"])
        assert by_os["Linux"] == {"RunShellScript", "ifconfig"}
        assert {"IPConfig", "RDPSettings", "EnableRemotePS", "ResetRDPCert",
                "RunPowerShellScript", "SetRDPPort"} <= by_os["Windows"]
        port = await api.client.get(f"{LOCATIONS}/setrdpport", params={"api-version": COMPUTE})
        spec_index().validate_response("VirtualMachineRunCommands_Get", 200, port.json())
        assert port.json()["parameters"] == [
            {"name": "RDPPort", "type": "string", "defaultValue": "3389"}]
        missing = await api.client.get(f"{LOCATIONS}/Nope", params={"api-version": COMPUTE})
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == (
            "The entity was not found in this Azure location.")
        stranger = LOCATIONS.replace(SUB, "11111111-2222-4333-8444-555555555555")
        assert (await api.client.get(stranger, params={"api-version": COMPUTE})
                ).json()["error"]["code"] == "SubscriptionNotFound"


async def test_throttling_and_api_versions_as_other_routes(tmp_path: Path) -> None:
    async with sandbox_api(make_fleet(LINUX), tmp_path) as api:
        listed = await api.client.get(LOCATIONS, params={"api-version": COMPUTE})
        assert "x-ms-ratelimit-remaining-subscription-reads" in listed.headers
        posted = await _invoke(api, "lin", {"commandId": "RunShellScript",
                                            "script": ["true"]})
        assert "x-ms-ratelimit-remaining-subscription-writes" in posted.headers
        old = await api.client.get(LOCATIONS, params={"api-version": "2099-01-01"})
        assert old.status_code == 400
        assert old.json()["error"]["code"] == "InvalidApiVersionParameter"
        wrong_verb = await api.client.get(f"{api.vm_path('lin')}/runCommand",
                                          params={"api-version": COMPUTE})
        assert wrong_verb.status_code == 405
