"""``fleetrun azure setup-output``'s flow over recorded ARM answers, and what it writes."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from core.azure.arm import ArmClient
from core.azure.auth import StaticToken
from core.azure.output_storage import (
    CONTAINER_WRITE,
    GRAPH_PATH,
    STORAGE_API_VERSION,
    OutputSetupError,
    account_query,
    check_names,
    kql_text,
    record_output,
    setup_output,
)
from core.azure.settings import SettingsError, load_azure_settings
from core.config_file import ConfigFileError
from core.errors import BadInputError
from tests.azure.sandboxed import SUB as SANDBOX_SUB
from tests.azure.sandboxed import azure_bed, fleet_of

SUB = "11111111-1111-4111-8111-111111111111"
SUB2 = "22222222-2222-4222-8222-222222222222"
ACCOUNT_ID = (f"/subscriptions/{SUB2}/resourceGroups/rg-logs/providers/Microsoft.Storage/"
              "storageAccounts/fleetout")
ENDPOINT = "https://fleetout.z07.blob.storage.azure.net/"
Handler = Callable[[httpx.Request], httpx.Response]
CONTAINERS = ACCOUNT_ID + "/blobServices/default/containers/"


def arm_answers(*, put_status: int = 201, put_error: dict[str, object] | None = None,
                seen: list[httpx.Request] | None = None) -> Handler:
    """Resource Graph finding ``fleetout`` (a DNS-zone endpoint), and the container PUT."""
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        path = request.url.path
        if request.method == "POST" and path == GRAPH_PATH:
            found = "'fleetout'" in json.loads(request.content)["query"]
            return httpx.Response(200, json={"totalRecords": int(found), "data": [
                {"id": ACCOUNT_ID, "name": "fleetout", "resourceGroup": "rg-logs",
                 "subscriptionId": SUB2, "blob": ENDPOINT}] if found else []})
        if request.method == "PUT" and path.startswith(CONTAINERS):
            if put_error is not None:
                return httpx.Response(put_status, json={"error": put_error})
            name = path.rsplit("/", 1)[1]
            return httpx.Response(put_status, json={
                "id": path, "name": name, "etag": '"0x1"',
                "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
                "properties": {"publicAccess": "None"}})
        return httpx.Response(404, json={"error": {"code": "NotFound", "message": path}})
    return answer


def client(handler: Handler) -> ArmClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ArmClient("https://management.azure.com", StaticToken("t" * 20), http=http)


async def test_one_graph_query_finds_the_account_and_the_container_is_made() -> None:
    seen: list[httpx.Request] = []
    lines: list[str] = []
    arm = client(arm_answers(seen=seen))
    result = await setup_output(arm, [SUB, SUB2], "fleetout", progress=lines.append)
    assert result.created
    assert result.container_url == "https://fleetout.z07.blob.storage.azure.net/fleetrun-output"
    assert result.account.resource_group == "rg-logs"
    query, put = seen
    assert (query.method, query.url.path) == ("POST", GRAPH_PATH)
    assert json.loads(query.content)["subscriptions"] == [SUB, SUB2]
    assert put.url.path == f"{ACCOUNT_ID}/blobServices/default/containers/fleetrun-output"
    assert put.url.params["api-version"] == STORAGE_API_VERSION
    assert json.loads(put.content) == {"properties": {"publicAccess": "None"}}
    assert any("found fleetout" in line for line in lines)


async def test_without_subscriptions_the_query_spans_every_one_the_login_sees() -> None:
    seen: list[httpx.Request] = []
    lines: list[str] = []
    await setup_output(client(arm_answers(seen=seen)), [], "fleetout", progress=lines.append)
    assert "subscriptions" not in json.loads(seen[0].content)
    assert all(r.url.path != "/subscriptions" for r in seen)
    assert any("every subscription your login can see" in line for line in lines)


def test_names_reach_the_query_as_kql_string_literals() -> None:
    query = account_query("fleetout", "rg-Logs.(1)")
    assert "name =~ 'fleetout' and resourceGroup =~ 'rg-Logs.(1)'" in query
    # check_names refuses quotes first; the literal still cannot be ended from inside.
    assert kql_text("a'b\\") == "'a\\'b\\\\'"
    with pytest.raises(BadInputError, match="--resource-group"):
        check_names("fleetout", "fleetrun-output", "rg' or name != '")


async def test_a_403_on_the_container_names_the_missing_action_and_the_roles() -> None:
    error = {"code": "AuthorizationFailed", "message": "The client 'u' does not have "
             "authorization to perform action '" + CONTAINER_WRITE + "' over scope '...'"}
    with pytest.raises(OutputSetupError) as caught:
        await setup_output(client(arm_answers(put_status=403, put_error=error)), [SUB2],
                           "fleetout")
    text = str(caught.value)
    assert CONTAINER_WRITE in text and "Storage Account Contributor" in text
    assert "Storage Blob Data Contributor" in text and "Traceback" not in text


async def test_an_account_nowhere_is_named() -> None:
    with pytest.raises(OutputSetupError, match="no storage account 'missing'") as caught:
        await setup_output(client(arm_answers()), [SUB, SUB2], "missing")
    assert "Resource Graph" in str(caught.value)


# Against the sandbox over HTTP: its accounts are rows of its Resource Graph.
TWO_SUBSCRIPTIONS = fleet_of(
    {"name": "vm-a", "kind": "vm", "os": "linux"},
    {"name": "vm-b", "kind": "vm", "os": "linux", "subscription": SUB2},
    storage_accounts=[{"name": "fleetout", "subscription": SUB2, "resource_group": "rg-logs"}])


async def test_against_the_sandbox_the_account_is_found_created_then_reused(
        tmp_path: Path) -> None:
    async with azure_bed(TWO_SUBSCRIPTIONS, tmp_path) as bed:
        first = await setup_output(bed.arm, [], "fleetout")
        assert first.created and first.account.resource_group == "rg-logs"
        assert first.container_url == f"{bed.base_url}/fleetout/fleetrun-output"
        assert "fleetrun-output" in bed.service.blobs.containers("fleetout")
        again = await setup_output(bed.arm, [SANDBOX_SUB, SUB2], "fleetout",
                                   resource_group="RG-LOGS")
        assert not again.created and again.container_url == first.container_url


async def test_against_the_sandbox_a_resource_group_or_subscriptions_narrow_the_search(
        tmp_path: Path) -> None:
    async with azure_bed(TWO_SUBSCRIPTIONS, tmp_path) as bed:
        with pytest.raises(OutputSetupError, match="resource group rg-x of"):
            await setup_output(bed.arm, [], "fleetout", resource_group="rg-x")
        with pytest.raises(OutputSetupError, match=f"subscription\\(s\\) {SANDBOX_SUB}"):
            await setup_output(bed.arm, [SANDBOX_SUB], "fleetout")


@pytest.mark.parametrize(("flags", "named"), [
    ({"account": "Bad_Name"}, "--account"),
    ({"account": "fleetout", "container": "No--pe"}, "--container"),
])
async def test_names_azure_would_refuse_are_named(flags: dict[str, str], named: str) -> None:
    container = flags.get("container", "fleetrun-output")
    with pytest.raises(BadInputError, match=named):
        await setup_output(client(arm_answers()), [SUB], flags["account"], container=container)


CONFIG = """theme = "fleetrun-night"   # mine

# my Azure
[azure]
subscriptions = ["11111111-1111-4111-8111-111111111111"]  # prod
output_container = ""   # to be set
cleanup = "keep"

[azure.throttle]
reserve = 0.1

[keymap]
"fleet.compose" = "n"
"""


def test_recording_keeps_the_users_keys_and_comments(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETRUN_AZURE_OUTPUT_CONTAINER", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    path.chmod(0o600)
    url = "https://fleetout.blob.core.windows.net/fleetrun-output"
    record_output(path, url)
    text = path.read_text()
    for kept in ("# mine", "# my Azure", "# prod", 'cleanup = "keep"', "reserve = 0.1",
                 '"fleet.compose" = "n"'):
        assert kept in text
    assert f'output_container = "{url}"' in text and "# to be set" not in text
    settings = load_azure_settings(path)
    assert settings.output_container == url and settings.output_mode == "user-delegation"
    assert settings.cleanup == "keep" and settings.throttle.reserve == 0.1
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0
    record_output(path, url)  # twice: the same file
    assert path.read_text() == text


def test_recording_without_a_file_or_table_makes_them(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    record_output(path, "https://a1b.blob.core.windows.net/out")
    assert load_azure_settings(path).delegates
    path.write_text('theme = "x"\n')
    path.chmod(0o600)
    record_output(path, "https://a1b.blob.core.windows.net/out")
    assert path.read_text().startswith('theme = "x"\n\n[azure]\n')


def test_recording_refuses_what_the_settings_would_refuse(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[azure]\ncleanup = "sometimes"\n')
    path.chmod(0o600)
    with pytest.raises(SettingsError, match=r"azure\.cleanup"):
        record_output(path, "https://a1b.blob.core.windows.net/out")
    assert path.read_text() == '[azure]\ncleanup = "sometimes"\n'


def test_a_multi_line_value_is_not_edited(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[azure]\noutput_container = """\nhttps://a1b.blob.core.windows.net/out"""\n')
    path.chmod(0o600)
    with pytest.raises(ConfigFileError, match="spans several lines"):
        record_output(path, "https://a1b.blob.core.windows.net/out")
