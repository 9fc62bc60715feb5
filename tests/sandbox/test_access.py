"""Who may use the sandbox: holders of its own token, at its own address, with ARM's names.

The sandbox runs scripts as the user who started it. A guessed token from another local
user, a web page that rebinds a DNS name to 127.0.0.1, a SAS signed with a key printed in
the source, or a run-command name that reaches a shell must each be refused before
anything runs (issue 14).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline import Pipeline
from azure.core.pipeline.policies import BearerTokenCredentialPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.core.rest import HttpRequest

from core.azure.auth import ARM_SCOPE
from core.azure.session import AzureSession
from core.fleet.sandbox import sandbox_source
from core.model import MachineKind
from core.sandbox.background import BackgroundSandbox
from core.sandbox.fleet import FleetSpec, default_fleet, parse_fleet
from core.sandbox.sas import sign_blob_sas
from core.sandbox.server import SandboxServer
from core.sandbox.service import SandboxService
from tests.sandbox.arm_client import COMPUTE, Api, make_fleet, sandbox_api

OLD_PUBLIC_KEY = "ZmxlZXRydW4tc2FuZGJveC1rZXktbm90LWEtc2VjcmV0LWp1c3QtYS1kZW1vLWtleQ=="
"""The account key every sandbox used to share, printed in fleetrun's own source."""
OLD_FIXED_TOKEN = "fleetrun-sandbox"
"""The bearer token fleetrun's own client used to send, printed in its source."""
ARM_401 = {"error": {"code": "InvalidAuthenticationToken",
                     "message": "The access token is invalid."}}
SCRIPT = {"source": {"script": "echo ran"}}
VM = Api.vm_path("vm1")
ARC = Api.arc_path("arc1")
WEB_01 = ("/subscriptions/11111111-1111-4111-8111-111111111111/resourceGroups/rg-prod-web"
          "/providers/Microsoft.Compute/virtualMachines/web-01")


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with sandbox_api(make_fleet({"name": "vm1", "kind": "vm", "os": "linux"},
                                      {"name": "arc1", "kind": "arc", "os": "linux"}),
                           tmp_path, served=True) as api:
        yield api


def assert_nothing_ran(api: Api) -> None:
    """No run command exists and no machine has a run directory (where scripts start)."""
    for machine in api.service.all_machines():
        assert api.service.run_commands(machine) == {}, machine.name
        assert not (machine.root / "download").exists(), machine.name
    assert not list(api.service.root.rglob("script.sh"))


def _encoded(name: str) -> str:
    """Every byte percent-encoded: clients cannot tidy ``..`` away or split on ``/``."""
    return "".join(f"%{byte:02X}" for byte in name.encode())


# --------------------------------------------------------------------------------- token


@pytest.mark.parametrize("token", ["wrong", OLD_FIXED_TOKEN, "x", "Bearer"])
async def test_a_wrong_token_gets_arms_401_and_nothing_runs(api: Api, token: str) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, trust_env=False) as stranger:
        for machine in (VM, ARC):
            version = COMPUTE if machine == VM else "2025-01-13"
            answer = await stranger.put(
                f"{machine}/runCommands/cmd", params={"api-version": version},
                headers={"Authorization": f"Bearer {token}"},
                json={"location": "westeurope", "properties": SCRIPT})
            assert answer.status_code == 401, answer.text
            assert answer.json() == ARM_401
            assert answer.headers["WWW-Authenticate"].startswith("Bearer ")
            assert "error=\"invalid_token\"" in answer.headers["WWW-Authenticate"]
    assert_nothing_ran(api)


async def test_an_empty_or_missing_token_gets_401_and_nothing_runs(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.base_url, trust_env=False) as stranger:
        for headers, code in (({"Authorization": "Bearer"}, "InvalidAuthenticationToken"),
                              ({}, "AuthenticationFailed")):
            answer = await stranger.put(f"{VM}/runCommands/cmd",
                                        params={"api-version": COMPUTE}, headers=headers,
                                        json={"location": "westeurope", "properties": SCRIPT})
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["code"] == code
    assert_nothing_ran(api)


async def test_another_sandboxs_token_is_refused(api: Api, tmp_path: Path) -> None:
    other_service = SandboxService(api.service.fleet, root=tmp_path / "other")
    other = SandboxServer(other_service)
    try:
        assert other.token != api.client.headers["Authorization"].removeprefix("Bearer ")
        async with httpx.AsyncClient(base_url=api.base_url, trust_env=False) as stranger:
            answer = await stranger.put(f"{VM}/runCommands/cmd", params={"api-version": COMPUTE},
                                        headers={"Authorization": f"Bearer {other.token}"},
                                        json={"location": "westeurope", "properties": SCRIPT})
        assert answer.status_code == 401, answer.text
        assert answer.json() == ARM_401
        assert_nothing_ran(api)
    finally:
        await other.stop()
        await other_service.aclose()


async def test_the_sandboxs_own_token_runs_the_command(api: Api) -> None:
    created = await api.put(VM, "cmd", SCRIPT)
    assert created.status_code == 201, created.text
    body = await api.wait_for(VM, "cmd")
    assert body["properties"]["instanceView"]["output"] == "ran\n"
    # ARM takes the scheme in any case.
    token = api.client.headers["Authorization"].removeprefix("Bearer ")
    lower = await api.client.get(VM, params={"api-version": COMPUTE},
                                 headers={"Authorization": f"bearer {token}"})
    assert lower.status_code == 200, lower.text


async def test_every_sandbox_server_has_its_own_random_token(tmp_path: Path) -> None:
    found = []
    for index in range(3):
        service = SandboxService(_fleet_of_one(), root=tmp_path / str(index))
        server = SandboxServer(service)
        found.append(server.token)
        await server.stop()
        await service.aclose()
    assert len(set(found)) == 3
    assert all(len(token) >= 32 for token in found)


def _fleet_of_one() -> FleetSpec:
    return make_fleet({"name": "vm1", "kind": "vm", "os": "linux"})


async def test_the_sandbox_fleetrun_run_starts_refuses_a_guessed_token() -> None:
    source = sandbox_source("sandbox")
    try:
        machines = await source.load()  # fleetrun's own client gets through
        assert any(m.name == "web-01" for m in machines)
        session = source.reach[MachineKind.VM]
        assert isinstance(session, AzureSession)
        base = session.arm.base_url
        async with httpx.AsyncClient(base_url=base, trust_env=False) as stranger:
            for guess in (OLD_FIXED_TOKEN, "x", "sandbox"):
                answer = await stranger.put(
                    f"{WEB_01}/runCommands/guessed", params={"api-version": COMPUTE},
                    headers={"Authorization": f"Bearer {guess}"},
                    json={"location": "westeurope", "properties": SCRIPT})
                assert answer.status_code == 401, answer.text
                assert answer.json() == ARM_401
            listed = await stranger.get(f"{WEB_01}/runCommands",
                                        params={"api-version": COMPUTE},
                                        headers={"Authorization": f"Bearer {OLD_FIXED_TOKEN}"})
            assert listed.status_code == 401
    finally:
        await source.aclose()


def test_an_official_sdk_pipeline_presents_the_token() -> None:
    """azure-core's bearer policy, as every Azure SDK client uses it, gets through."""

    class Credential:
        def __init__(self, token: str) -> None:
            self.value = token

        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken(self.value, int(datetime.now(UTC).timestamp()) + 3600)

    sandbox = BackgroundSandbox(_fleet_of_one())
    base = sandbox.start()
    try:
        url = f"{base}{VM}?api-version={COMPUTE}"
        answers = {}
        for name, token in (("own", sandbox.token), ("other", "not-the-token")):
            policy = BearerTokenCredentialPolicy(Credential(token), ARM_SCOPE)
            with Pipeline(transport=RequestsTransport(), policies=[policy]) as pipeline:
                # The SDK refuses bearer tokens over plain http unless told the endpoint is local.
                response = pipeline.run(HttpRequest("GET", url), enforce_https=False)
                answers[name] = response.http_response
        assert answers["own"].status_code == 200, answers["own"].text()
        assert answers["own"].json()["name"] == "vm1"
        assert answers["other"].status_code == 401
        assert answers["other"].json() == ARM_401
    finally:
        sandbox.stop()


# ---------------------------------------------------------------------------------- Host


def _own_port(api: Api) -> int:
    port = httpx.URL(api.base_url).port
    assert port is not None
    return port


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:{other}", "evil.example",
                                  "127.0.0.1", "localhost", "127.0.0.1.nip.io:{port}",
                                  "localhost.:{port}", "0.0.0.0:{port}"])
async def test_a_foreign_host_header_is_refused_on_arm_routes(api: Api, host: str) -> None:
    port = _own_port(api)
    value = host.format(port=port, other=port + 1 if port < 65535 else port - 1)
    answer = await api.client.put(f"{VM}/runCommands/cmd", params={"api-version": COMPUTE},
                                  headers={"Host": value},
                                  json={"location": "westeurope", "properties": SCRIPT})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "InvalidHostName"
    assert value in error["message"] and f"127.0.0.1:{port}" in error["message"]
    assert_nothing_ran(api)


async def test_a_foreign_host_header_is_refused_on_blob_routes(api: Api) -> None:
    port = _own_port(api)
    url = api.blob_url("kept.txt")
    created = await api.client.put(url, headers={"x-ms-blob-type": "AppendBlob"})
    assert created.status_code == 201, created.text
    appended = await api.client.put(url + "&comp=appendblock", content=b"secret output")
    assert appended.status_code == 201, appended.text
    for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}"):
        read = await api.client.get(url, headers={"Host": host})
        assert read.status_code == 400, read.text
        assert read.headers["x-ms-error-code"] == "InvalidHostName"
        assert b"secret output" not in read.content
        written = await api.client.put(api.blob_url("planted.txt"),
                                       headers={"Host": host, "x-ms-blob-type": "AppendBlob"})
        assert written.status_code == 400
    fleet = api.service.fleet
    assert "planted.txt" not in api.service.blobs.blob_names(fleet.account, fleet.containers[0])


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}",
                                  "[::1]:{port}"])
async def test_the_sandboxs_own_host_names_are_answered(api: Api, host: str) -> None:
    answer = await api.client.get(VM, params={"api-version": COMPUTE},
                                  headers={"Host": host.format(port=_own_port(api))})
    assert answer.status_code == 200, answer.text
    blob = await api.client.put(api.blob_url("ok.txt"), headers={
        "Host": host.format(port=_own_port(api)), "x-ms-blob-type": "AppendBlob"})
    assert blob.status_code == 201, blob.text


# --------------------------------------------------------------------------------- names


BAD_NAMES = ["..", ".", "a..b", "a;touch pwned", "$(touch pwned)", "`touch pwned`", "a b",
             "a\nb", "a/b", "../../etc", "a\\b", "a&b", "a|b", "a>b", "name.", "a%b",
             "a:b", "a?b", "a'b", 'a"b', "a*b", "-rf"]


@pytest.mark.parametrize("name", BAD_NAMES)
async def test_a_bad_run_command_name_is_arms_400_and_never_reaches_a_process(
    api: Api, name: str
) -> None:
    for machine in (VM, ARC):
        version = COMPUTE if machine == VM else "2025-01-13"
        answer = await api.client.put(f"{machine}/runCommands/{_encoded(name)}",
                                      params={"api-version": version},
                                      json={"location": "westeurope", "properties": SCRIPT})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "InvalidResourceName", error
        assert repr(name)[1:-1] in error["message"] or name in error["message"]
        assert "letters, digits" in error["message"]
        for method in ("GET", "DELETE"):
            other = await api.client.request(method, f"{machine}/runCommands/{_encoded(name)}",
                                              params={"api-version": version})
            assert other.status_code == 400, (method, other.text)
    assert_nothing_ran(api)


@pytest.mark.parametrize("name", ["..", "vm1..x", "vm1;id", "$(id)", "vm 1", "vm1\n", "a/b",
                                  "vm1."])
async def test_a_bad_machine_name_is_arms_400(api: Api, name: str) -> None:
    for path, version in ((Api.vm_path(_encoded(name)), COMPUTE),
                          (Api.arc_path(_encoded(name)), "2025-01-13")):
        answer = await api.client.put(f"{path}/runCommands/cmd", params={"api-version": version},
                                      json={"location": "westeurope", "properties": SCRIPT})
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["code"] == "InvalidResourceName"
        got = await api.client.get(path, params={"api-version": version})
        assert got.status_code == 400, got.text
    assert_nothing_ran(api)


@pytest.mark.parametrize("name", ["cmd", "fleetrun-20250101-abc123", "Run_Command.2", "a-b_c.d"])
async def test_ordinary_names_still_work(api: Api, name: str) -> None:
    created = await api.put(VM, name, SCRIPT)
    assert created.status_code == 201, created.text
    await api.wait_for(VM, name)


async def test_no_path_or_name_reaches_a_shell_command_line(tmp_path: Path) -> None:
    root = tmp_path / "with space;touch INJECTED;$(touch INJECTED2)"
    async with sandbox_api(make_fleet({"name": "vm1", "kind": "vm", "os": "linux"}),
                           root) as api:
        created = await api.put(VM, "cmd", {**SCRIPT, "parameters": [
            {"name": "", "value": "first"}]})
        assert created.status_code == 201, created.text
        body = await api.wait_for(VM, "cmd")
    view = body["properties"]["instanceView"]
    assert (view["executionState"], view["output"]) == ("Succeeded", "ran\n"), view
    assert not list(tmp_path.rglob("INJECTED*"))


# ----------------------------------------------------------------------------- blob keys


def test_a_sas_signed_with_the_old_public_key_reads_nothing() -> None:
    sandbox = BackgroundSandbox(default_fleet())
    base = sandbox.start()
    try:
        fleet = sandbox.fleet
        assert fleet.account_key != OLD_PUBLIC_KEY
        own = sandbox.container_url().replace("/fleetrun?", "/fleetrun/out.txt?")
        with httpx.Client(trust_env=False) as http:
            assert http.put(own, headers={"x-ms-blob-type": "AppendBlob"}).status_code == 201
            assert http.put(own + "&comp=appendblock", content=b"secret").status_code == 201
            expiry = datetime.now(UTC) + timedelta(hours=1)
            for permissions in ("r", "racw"):
                old = sign_blob_sas(fleet.account, OLD_PUBLIC_KEY, fleet.containers[0],
                                    "out.txt", permissions, expiry)
                url = f"{base}/{fleet.account}/{fleet.containers[0]}/out.txt?{old}"
                read = http.get(url)
                assert read.status_code == 403, read.text
                assert b"secret" not in read.content
                assert http.put(url + "&comp=appendblock", content=b"planted").status_code == 403
            assert http.get(own).content == b"secret"
    finally:
        sandbox.stop()


def test_each_sandbox_gets_its_own_account_key() -> None:
    keys = {default_fleet().account_key for _ in range(3)}
    assert len(keys) == 3 and OLD_PUBLIC_KEY not in keys


def test_a_fleet_files_storage_key_is_still_used() -> None:
    key = "c2VjcmV0LWtleS1mcm9tLXRoZS1mbGVldC1maWxlLTEyMzQ1Njc4OTAxMjM0NTY3OA=="
    fleet = parse_fleet({"storage": {"key": key},
                         "machines": [{"name": "vm1", "kind": "vm", "os": "linux",
                                       "subscription": "00000000-0000-4000-8000-000000000001",
                                       "resource_group": "rg", "location": "westeurope"}]})
    assert fleet.account_key == key
    sandbox = BackgroundSandbox(fleet)
    base = sandbox.start()
    try:
        expiry = datetime.now(UTC) + timedelta(hours=1)
        sas = sign_blob_sas(fleet.account, key, fleet.containers[0], "b.txt", "racw", expiry)
        url = f"{base}/{fleet.account}/{fleet.containers[0]}/b.txt?{sas}"
        created = httpx.put(url, headers={"x-ms-blob-type": "AppendBlob"}, trust_env=False)
        assert created.status_code == 201, created.text
    finally:
        sandbox.stop()
