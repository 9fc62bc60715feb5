"""Microsoft.Storage through ARM: storage accounts listed, blob containers put, got, deleted.

Reference: azure-storage-and-scale-sets.md sections 1 and 8. The accounts are the fleet's
(``core.sandbox.storage_accounts``); each one's blob endpoint is the sandbox's own, path
style (``http://127.0.0.1:PORT/ACCOUNT/``), built from the address the caller used. A
container PUT is 201 on create and 200 on a re-PUT (never 409: ARM's PUT is idempotent); it
is synchronous (no long-running operation). DELETE is 200, or 204 when there was none.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from core.sandbox.blobstore import BlobStore
from core.sandbox.errors import ArmError
from core.sandbox.fleet import FleetSpec
from core.sandbox.storage_accounts import NO_ROLE, StorageAccountSpec, with_own_account

ACCOUNTS_PER_PAGE: Final = 20
"""Storage accounts per page of a list; more pages are reached through ``nextLink``."""
PUBLIC_ACCESS: Final = ("None", "Container", "Blob")
_CONTAINER_PROPERTIES: Final = frozenset({
    "publicAccess", "metadata", "defaultEncryptionScope", "denyEncryptionScopeOverride",
    "immutableStorageWithVersioning", "enableNfsV3RootSquash", "enableNfsV3AllSquash",
})
_EPOCH_TICKS: Final = 621_355_968_000_000_000
_CONTAINER_NAME: Final = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")


def accounts_of(fleet: FleetSpec) -> tuple[StorageAccountSpec, ...]:
    """The fleet's storage accounts, its ``[storage]`` account among them."""
    first = fleet.machines[0]
    return with_own_account(
        fleet.storage_accounts, name=fleet.account, key=fleet.account_key,
        containers=fleet.containers,
        where_first=(first.subscription, first.resource_group, first.location))


@dataclass(slots=True)
class _Container:
    modified: datetime
    etag: str
    public_access: str = "None"
    metadata: dict[str, str] = field(default_factory=dict)


class StorageArm:
    """The ARM view of the fleet's storage accounts, over the blob store that holds them."""

    def __init__(self, fleet: FleetSpec, blobs: BlobStore) -> None:
        self.blobs = blobs
        self.accounts: dict[str, StorageAccountSpec] = {}
        self.created = datetime.now(UTC)
        self._containers: dict[tuple[str, str], _Container] = {}
        self._lock = threading.Lock()
        for spec in accounts_of(fleet):
            self.accounts[spec.name] = spec
            blobs.add_account(spec.name, spec.key)
            for container in spec.containers:
                blobs.create_container(spec.name, container)

    # ---------------------------------------------------------------------------- accounts

    def listed(self, subscription: str, resource_group: str | None) -> list[StorageAccountSpec]:
        """Accounts in a subscription (and resource group), by name."""
        return sorted(
            (spec for spec in self.accounts.values()
             if spec.subscription.lower() == subscription.lower()
             and (resource_group is None
                  or spec.resource_group.lower() == resource_group.lower())),
            key=lambda spec: spec.name)

    def account(self, subscription: str, resource_group: str, name: str) -> StorageAccountSpec:
        spec = self.accounts.get(name.lower())
        if (spec is None or spec.subscription.lower() != subscription.lower()
                or spec.resource_group.lower() != resource_group.lower()):
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.Storage/storageAccounts/{name}' under "
                           f"resource group '{resource_group}' was not found. For more "
                           "details please go to https://aka.ms/ARMResourceNotFoundFix")
        return spec

    def account_json(self, spec: StorageAccountSpec, blob_endpoint: str) -> dict[str, Any]:
        """A ``StorageAccount`` as the list answers it."""
        return {
            "id": _account_id(spec),
            "name": spec.name,
            "type": "Microsoft.Storage/storageAccounts",
            "location": spec.location,
            "kind": "StorageV2",
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "creationTime": _iso(self.created),
                "primaryLocation": spec.location,
                "statusOfPrimary": "available",
                "primaryEndpoints": {"blob": blob_endpoint},
                "accessTier": "Hot",
                "allowSharedKeyAccess": True,
                "isHnsEnabled": False,
                "publicNetworkAccess": "Enabled",
                # The sandbox serves plain HTTP on loopback.
                "supportsHttpsTrafficOnly": False,
                "minimumTlsVersion": "TLS1_2",
                "networkAcls": {"bypass": "AzureServices", "defaultAction": "Allow",
                                "ipRules": [], "virtualNetworkRules": []},
            },
        }

    def graph_rows(self, base_url: str, *, tenant_id: str) -> list[dict[str, Any]]:
        """Every account as a row of Resource Graph's ``Resources`` table (reference 1.3:
        ``type`` ``microsoft.storage/storageaccounts``, ``properties.primaryEndpoints.blob``);
        ``base_url`` is the address the caller used, the blob endpoint's host."""
        rows = []
        for spec in self.accounts.values():
            body = self.account_json(spec, f"{base_url}/{spec.name}/")
            rows.append({
                **body,
                # ARG reports type and resourceGroup lowercase (as for the machines' rows).
                "type": body["type"].lower(),
                "tenantId": tenant_id,
                "resourceGroup": spec.resource_group.lower(),
                "subscriptionId": spec.subscription,
                "managedBy": "",
                "plan": None,
                "identity": None,
                "zones": None,
                "extendedLocation": None,
            })
        return rows

    def identity_role(self, account: str, container: str) -> str:
        """The role the machines' managed identities hold on a container of an account."""
        spec = self.accounts.get(account)
        return spec.identity_role(container) if spec is not None else NO_ROLE

    # -------------------------------------------------------------------------- containers

    def put_container(
        self, spec: StorageAccountSpec, name: str, body: Any
    ) -> tuple[bool, dict[str, Any]]:
        """Create or update a container; (created, the ``BlobContainer``)."""
        properties = _container_properties(body)
        _check_container_name(name)
        with self._lock:
            created = name not in self.blobs.containers(spec.name)
            if created:
                self.blobs.create_container(spec.name, name)
            meta = self._meta(spec.name, name)
            if not created:
                meta.modified = datetime.now(UTC)
                meta.etag = _etag(meta.modified)
            if "publicAccess" in properties:
                meta.public_access = properties["publicAccess"]
            if "metadata" in properties:
                meta.metadata = dict(properties["metadata"])
            return created, _container_json(spec, name, meta)

    def get_container(self, spec: StorageAccountSpec, name: str) -> dict[str, Any]:
        with self._lock:
            if name not in self.blobs.containers(spec.name):
                raise _container_not_found(name)
            return _container_json(spec, name, self._meta(spec.name, name))

    def delete_container(self, spec: StorageAccountSpec, name: str) -> bool:
        """Whether there was one to delete (its blobs go with it)."""
        with self._lock:
            self._containers.pop((spec.name, name), None)
            return self.blobs.delete_container(spec.name, name)

    def _meta(self, account: str, name: str) -> _Container:
        meta = self._containers.get((account, name))
        if meta is None:
            now = datetime.now(UTC)
            meta = self._containers[(account, name)] = _Container(now, _etag(now))
        return meta


def _account_id(spec: StorageAccountSpec) -> str:
    return (f"/subscriptions/{spec.subscription}/resourceGroups/{spec.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{spec.name}")


def _container_json(spec: StorageAccountSpec, name: str, meta: _Container) -> dict[str, Any]:
    return {
        "id": f"{_account_id(spec)}/blobServices/default/containers/{name}",
        "name": name,
        "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
        "etag": meta.etag,
        "properties": {
            "publicAccess": meta.public_access,
            "leaseStatus": "Unlocked",
            "leaseState": "Available",
            "lastModifiedTime": _iso(meta.modified),
            "metadata": dict(meta.metadata),
            "hasImmutabilityPolicy": False,
            "hasLegalHold": False,
            "deleted": False,
            "remainingRetentionDays": 0,
            "defaultEncryptionScope": "$account-encryption-key",
            "denyEncryptionScopeOverride": False,
        },
    }


def _container_properties(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent",
                       "The request content must be a BlobContainer object, e.g. {}.")
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise ArmError(400, "InvalidRequestContent", "properties: an object")
    unknown = sorted(set(properties) - _CONTAINER_PROPERTIES)
    if unknown:
        raise ArmError(400, "InvalidRequestContent",
                       f"properties.{unknown[0]}: not a property of a blob container "
                       f"(allowed: {', '.join(sorted(_CONTAINER_PROPERTIES))})")
    access = properties.get("publicAccess", "None")
    if access not in PUBLIC_ACCESS:
        raise ArmError(400, "InvalidParameter",
                       f"properties.publicAccess: {access!r}; allowed: {', '.join(PUBLIC_ACCESS)}")
    metadata = properties.get("metadata", {})
    if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ArmError(400, "InvalidRequestContent",
                       "properties.metadata: an object of string values")
    return properties


def _check_container_name(name: str) -> None:
    # The ARM error code for a bad container name is UNCONFIRMED; ARM's usual one is used.
    if not _CONTAINER_NAME.fullmatch(name):
        raise ArmError(400, "InvalidParameter",
                       f"The container name '{name}' is not valid: 3-63 lowercase letters, "
                       "digits and single hyphens, starting and ending with a letter or digit.")


def _container_not_found(name: str) -> ArmError:
    # The code is UNCONFIRMED (reference section 8); ContainerNotFound is the data plane's.
    return ArmError(404, "ContainerNotFound", f"The specified container '{name}' does not exist.")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _etag(moment: datetime) -> str:
    ticks = int(moment.timestamp() * 10_000_000) + _EPOCH_TICKS
    return f'"0x{ticks:X}"'
