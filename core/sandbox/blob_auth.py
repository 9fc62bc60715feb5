"""Who may touch a blob: a bearer token (Microsoft Entra), a user delegation SAS, or a
service SAS signed with the account key.

- ``Authorization: Bearer <token>``: the sandbox's own token or a fleet principal's. Azure
  Storage takes bearer tokens from x-ms-version 2017-11-09 on; an older version is refused
  with 403 ``AuthenticationFailed`` ("Authentication scheme Bearer is not supported in this
  version.", the service's wording as users report it, UNCONFIRMED byte-exact). An unknown
  token is 401 ``InvalidAuthenticationInfo`` with a ``WWW-Authenticate`` challenge. Every
  sandbox principal holds Storage Blob Data Contributor on every account (the sandbox does not
  model data-plane role assignments for callers; machines' identities are another matter,
  ``core.sandbox.storage_accounts``).
- A SAS with ``skoid``: a user delegation SAS (``core.sandbox.user_delegation``).
- Any other SAS: the account-key service SAS (``core.sandbox.sas``), as before.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.sandbox.access import DEFAULT_PRINCIPAL, Access
from core.sandbox.blobstore import BlobOperation, BlobStore, sas_permissions
from core.sandbox.sas import SasError
from core.sandbox.storage_errors import StorageError
from core.sandbox.user_delegation import (
    is_user_delegation_sas,
    object_id,
    verify_user_delegation_sas,
)

BEARER_SINCE = "2017-11-09"


class BlobAuth:
    """Decides every blob request's authorisation.

    Args:
        store: The accounts (their keys) and blobs.
        access: Who holds tokens; None when the blob endpoint runs alone (tests, bench):
            then no bearer token is accepted.
        tenant: The directory the sandbox plays (``sktid`` of its keys).
    """

    def __init__(self, store: BlobStore, access: Access | None, tenant: str) -> None:
        self.store = store
        self.access = access
        self.tenant = tenant
        names = [DEFAULT_PRINCIPAL, *(access.principals if access is not None else {})]
        self.owners: dict[str, str] = {object_id(name): name for name in names}
        """Principal by the object id its user delegation keys carry."""

    def bearer(self, headers: Mapping[str, str], version: str) -> str | None:
        """The principal of the request's bearer token; None when it has no Authorization.

        Raises:
            StorageError: A token that is not ``Bearer``, not known, or sent at a version
                before 2017-11-09.
        """
        value = headers.get("authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            raise StorageError(
                403, "AuthenticationFailed",
                "Server failed to authenticate the request. The sandbox accepts a bearer "
                "token (Microsoft Entra) or a SAS, not Shared Key.",
                details={"AuthenticationErrorDetail": f"Authorization scheme {scheme!r} is "
                         "not supported by the sandbox."})
        if version < BEARER_SINCE:
            raise StorageError(
                403, "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of "
                "Authorization header is formed correctly including the signature.",
                details={"AuthenticationErrorDetail": "Authentication scheme Bearer is not "
                         "supported in this version."})
        principal = self.access.principal(token.strip()) if self.access is not None else None
        if principal is None:
            raise StorageError(
                401, "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information "
                "in the www-authenticate header.",
                details={"AuthenticationErrorDetail": "The token is not valid."},
                headers={"WWW-Authenticate": "Bearer authorization_uri=https://login."
                         f"microsoftonline.com/{self.tenant}/oauth2/authorize "
                         "resource_id=https://storage.azure.com"})
        return principal

    def authorize(
        self,
        headers: Mapping[str, str],
        target: tuple[str, str, str],
        query: Mapping[str, str],
        operation: BlobOperation,
        *,
        version: str,
        https: bool,
        client_ip: str | None,
    ) -> None:
        """Allow the request or raise the service's refusal (``StorageError``)."""
        if self.bearer(headers, version) is not None:
            self.store.account_key(target[0])  # 404 for an unknown account, as with a SAS
            return
        self.check_sas(target, query, operation, https=https, client_ip=client_ip)

    def check_sas(
        self,
        target: tuple[str, str, str],
        query: Mapping[str, str],
        operation: BlobOperation,
        *,
        https: bool,
        client_ip: str | None = None,
    ) -> None:
        """The request's SAS, account-key or user delegation, holds; else the service's
        refusal (``StorageError``). What a simulated handler's writes go through too."""
        account, container, blob = target
        if not is_user_delegation_sas(query):
            self.store.authorize(account, container, blob, query, operation, https=https,
                                 client_ip=client_ip)
            return
        key = self.store.account_key(account)
        try:
            self.store.properties(account, container, blob)
            exists = True
        except StorageError:
            exists = False
        try:
            verify_user_delegation_sas(
                query, account=account, account_key=key, container=container, blob=blob,
                any_of=sas_permissions(operation, exists=exists), now=self.store.now(),
                owners=self.owners, tenant=self.tenant, https=https, client_ip=client_ip)
        except SasError as exc:
            raise StorageError.from_sas(exc) from None
