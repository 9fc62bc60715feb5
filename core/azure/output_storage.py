"""``fleetrun azure setup-output``: find a storage account, make its container, record it.

Through ARM only (storage reference section 1): the account is found with one Resource Graph
query (reference 1.3's alternative to listing each subscription's accounts) across the
configured subscriptions, or every subscription the login sees when none is configured, a
resource group narrowing it in the query; its blob endpoint is read from
``properties.primaryEndpoints.blob`` (never built from the name: sovereign clouds and DNS-zone
endpoints differ), and the container created or reused with ``PUT
.../blobServices/default/containers/{name}`` (201 created, 200 already there). Then
``[azure]`` gets ``output_container`` (the plain container URL) and ``output_mode =
"user-delegation"``: each run signs its own per-blob SAS (:mod:`core.azure.delegated_output`).

One query rather than ``GET /subscriptions`` and one account listing per subscription: the
same single path whether or not subscriptions are configured, one request however many
subscriptions, and the same read access (Reader) as the listing. Its one cost: Resource Graph
shows a new account after a short delay, which the not-found error says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.azure.arm import ArmClient, ArmError
from core.azure.settings import parse_azure_settings
from core.config_edit import set_table_keys
from core.config_file import read_config
from core.errors import BadInputError, ServiceError

STORAGE_API_VERSION = "2025-06-01"
"""Long in the spec with every container operation (reference section 1.1)."""
GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
"""Resource Graph's query endpoint (as core.inventory.azure_graph's; not imported from
there: the Azure client does not depend on an inventory)."""
DEFAULT_CONTAINER = "fleetrun-output"
CONTAINER_WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/write"
ACCOUNTS_READ = "Microsoft.Storage/storageAccounts/read"
ROLES = (
    f"Roles you need: to find the account, Reader ({ACCOUNTS_READ}); "
    "to create the container, Storage Account Contributor (or Contributor, "
    f"or Storage Blob Data Contributor: {CONTAINER_WRITE}); for each run, Storage Blob Data "
    "Contributor on the container (the machines write through your user-delegation SAS, "
    "and you read the output; Storage Blob Data Reader is enough to read only) and "
    "generateUserDelegationKey/action on the account (any Storage Blob Data role at account "
    "scope, or Storage Blob Delegator)."
)
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_RG_OF = re.compile(r"/resourceGroups/([^/]+)/", re.IGNORECASE)


class OutputSetupError(ServiceError):
    """Setting up output storage failed; the message says what to grant or fix."""

    service = "azure"


@dataclass(frozen=True, slots=True)
class StorageAccount:
    id: str
    name: str
    resource_group: str
    blob_endpoint: str


@dataclass(frozen=True, slots=True)
class SetupResult:
    account: StorageAccount
    container: str
    container_url: str
    created: bool


Progress = Callable[[str], None]


def check_names(account: str, container: str, resource_group: str | None) -> None:
    """Raises BadInputError naming the flag whose value Azure would refuse."""
    if not _ACCOUNT.match(account):
        raise BadInputError(f"--account: {account!r} is not a storage account name; allowed: "
                            "3-24 lowercase letters and digits")
    if not _CONTAINER.match(container):
        raise BadInputError(f"--container: {container!r} is not a container name; allowed: "
                            "3-63 lowercase letters, digits and single hyphens")
    if resource_group is not None and not _RESOURCE_GROUP.match(resource_group):
        raise BadInputError(f"--resource-group: {resource_group!r} is not a resource group "
                            "name; allowed: up to 90 letters, digits, '-', '_', '.', '(', ')'")


async def setup_output(
    arm: ArmClient, subscriptions: Sequence[str], account: str, *,
    resource_group: str | None = None, container: str = DEFAULT_CONTAINER,
    progress: Progress = lambda _line: None,
) -> SetupResult:
    """Find ``account``, create or reuse ``container`` in it (nothing is written locally).

    Raises:
        BadInputError: A name Azure would refuse.
        OutputSetupError: Not found, refused (403: the missing action and the roles), or
            another ARM error.
    """
    check_names(account, container, resource_group)
    where = f" in resource group {resource_group}" if resource_group else ""
    among = (f"{len(subscriptions)} subscription(s)" if subscriptions
             else "every subscription your login can see")
    progress(f"looking for storage account {account}{where} in {among} (Resource Graph)")
    found = await find_account(arm, subscriptions, account, resource_group)
    progress(f"found {found.name} (resource group {found.resource_group}); "
             f"blob endpoint {found.blob_endpoint}")
    created = await ensure_container(arm, found, container)
    url = found.blob_endpoint.rstrip("/") + "/" + container
    return SetupResult(found, container, url, created)


def account_query(name: str, resource_group: str | None) -> str:
    """The KQL that finds one storage account (reference 1.3), names quoted as KQL strings."""
    query = ("resources\n"
             f"| where type =~ 'microsoft.storage/storageaccounts' and name =~ {kql_text(name)}")
    if resource_group:
        query += f" and resourceGroup =~ {kql_text(resource_group)}"
    return (query + "\n| project id, name, resourceGroup, subscriptionId, "
            "blob = tostring(properties.primaryEndpoints.blob)\n| order by id asc")


def kql_text(value: str) -> str:
    """``value`` as a single-quoted KQL string literal. The names reaching a query are
    checked first (:func:`check_names` allows no quote or backslash); this is the second
    guard, so a value can never end the literal and add to the query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def find_account(arm: ArmClient, subscriptions: Sequence[str], name: str,
                       resource_group: str | None) -> StorageAccount:
    """The storage account called ``name``: one Resource Graph query over ``subscriptions``
    (empty: every subscription the login sees)."""
    body: dict[str, Any] = {"query": account_query(name, resource_group),
                            "options": {"resultFormat": "objectArray"}}
    if subscriptions:
        body["subscriptions"] = list(subscriptions)
    try:
        # A query changes nothing: safe to resend; Resource Graph has its own quota.
        response = await arm.request("POST", GRAPH_PATH, json_body=body, budgeted=False,
                                     idempotent=True)
    except ArmError as error:
        raise _refused(error, ACCOUNTS_READ, "looking for the storage account in Resource "
                       "Graph") from None
    try:
        page = response.json()
    except ValueError:
        raise OutputSetupError("Resource Graph answered something that is not JSON") from None
    data = page.get("data") if isinstance(page, dict) else None
    rows = [row for row in data if isinstance(row, dict)] if isinstance(data, list) else []
    for row in rows:
        account = _account(row)
        if account is not None and account.name.lower() == name:
            return account
    group = f" resource group {resource_group} of" if resource_group else ""
    among = (f"the subscription(s) {', '.join(subscriptions)}" if subscriptions
             else "the subscriptions your login can see")
    raise OutputSetupError(
        f"no storage account {name!r} in{group} {among} (Resource Graph lists a new account "
        "a minute or two after it is created); check the name and [azure] subscriptions, or "
        "create one (az storage account create --name NAME --resource-group RG "
        "--allow-blob-public-access false)")


async def ensure_container(arm: ArmClient, account: StorageAccount, container: str) -> bool:
    """PUT the container (idempotent through ARM); True when it was created just now."""
    path = f"{account.id}/blobServices/default/containers/{container}"
    try:
        response = await arm.request("PUT", path, params={"api-version": STORAGE_API_VERSION},
                                     json_body={"properties": {"publicAccess": "None"}})
    except ArmError as error:
        raise _refused(error, CONTAINER_WRITE, f"creating container {container!r}") from None
    return response.status_code == 201


def record_output(config_path: Path, container_url: str) -> None:
    """Write ``output_container`` and ``output_mode`` into ``[azure]``, keeping the rest.

    Raises:
        SettingsError: The result would not be a valid ``[azure]`` table (it is not written).
        ConfigFileError: The file cannot be read or written.
    """
    values = {"output_container": container_url, "output_mode": "user-delegation"}
    table = dict(read_config(config_path).get("azure", {}))
    table.update(values)
    parse_azure_settings(table, environ={})  # check before writing
    set_table_keys(config_path, "azure", values)


def _refused(error: ArmError, action: str, doing: str) -> OutputSetupError:
    if error.status == 403:
        return OutputSetupError(
            f"{doing} was refused (403 {error.code}): your login lacks {action}. "
            f"{ROLES}")
    return OutputSetupError(f"{doing} failed: {error}")


def _account(row: dict[str, Any]) -> StorageAccount | None:
    """A Resource Graph row of :func:`account_query` (``blob`` projected), or None."""
    ident, name, blob = row.get("id"), row.get("name"), row.get("blob")
    if not (isinstance(blob, str) and blob and isinstance(ident, str)
            and isinstance(name, str)):
        return None
    group = _RG_OF.search(ident)
    return StorageAccount(ident, name, group[1] if group else "", blob)

