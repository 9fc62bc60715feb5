"""User-delegation keys and the per-blob SAS signed with them (storage reference section 2).

A user-delegation key comes from ``POST {blob endpoint}/?restype=service&comp=userdelegationkey``
with the user's Entra token (no Shared Key, no SAS), lives at most 7 days, and signs SAS
tokens whose rights are the SAS's permissions cut down to the key owner's data roles. The
string-to-sign is the layout of ``sv=2026-10-06`` (what azure-storage-blob 12.31.1 signs):
one field per line, no trailing newline, signed with HMAC-SHA256 of the decoded key.

Nothing here logs, and :class:`UserDelegationKey` never shows its value in ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from core.azure.blob_errors import BlobError, error_from, transport_error
from core.azure.http import parsed_url, send

SAS_VERSION: Final = "2026-10-06"
"""The ``sv`` signed and the ``x-ms-version`` sent for the key (reference sections 2.2, 5)."""
MAX_KEY_LIFETIME: Final = timedelta(days=7)
KEY_ACTION: Final = ("Microsoft.Storage/storageAccounts/blobServices/"
                     "generateUserDelegationKey/action")
WRITER_PERMISSIONS: Final = "racw"
"""What Compute asks of an output blob's SAS (reference section 2.3)."""
READER_PERMISSIONS: Final = "r"
Bearer = Callable[[], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class UserDelegationKey:
    """The service's answer, fields copied verbatim into every SAS signed with it."""

    signed_oid: str
    signed_tid: str
    signed_start: str
    signed_expiry: str
    signed_service: str
    signed_version: str
    value: str = field(repr=False)
    signed_delegated_user_tid: str = ""

    @property
    def expires(self) -> datetime:
        return _parse_time(self.signed_expiry)


@dataclass(frozen=True, slots=True)
class ContainerAddress:
    """Where a container is: its service URL (for the key), account and container names.

    ``https://ACCOUNT.blob.core.windows.net/CONTAINER`` (any host: the account is its first
    label), or path style ``http://127.0.0.1:PORT/ACCOUNT/CONTAINER`` for loopback hosts.
    """

    service_url: str
    account: str
    container: str
    https: bool

    @classmethod
    def of(cls, container_url: str) -> ContainerAddress:
        """Raises ValueError when the URL names no container."""
        parts = urlsplit(container_url)
        segments = [s for s in parts.path.split("/") if s]
        host = parts.hostname or ""
        if len(segments) == 2:
            account, container = segments
            service_path = f"/{account}"
        elif len(segments) == 1 and host:
            account, container = host.split(".")[0], segments[0]
            service_path = ""
        else:
            raise ValueError(f"{container_url.split('?')[0]!r}: not a container URL")
        service = urlunsplit((parts.scheme, parts.netloc, service_path + "/", "", ""))
        return cls(service, account, container, parts.scheme == "https")

    def blob_url(self, blob_name: str) -> str:
        """The plain URL of a blob in this container (no query)."""
        base = self.service_url.rstrip("/")
        return f"{base}/{self.container}/{quote(blob_name, safe='/')}"


async def get_user_delegation_key(
    http: httpx.AsyncClient, service_url: str, bearer: Bearer, *,
    start: datetime, expiry: datetime,
) -> UserDelegationKey:
    """Get User Delegation Key (reference section 2.1).

    Raises:
        ValueError: ``expiry`` is not after ``start`` or more than 7 days from now.
        BlobError: The service refused (a 403 names :data:`KEY_ACTION` and the roles that
            grant it) or could not be reached.
    """
    if expiry <= start or expiry - datetime.now(UTC) > MAX_KEY_LIFETIME:
        raise ValueError("a user-delegation key expires after its start and within 7 days")
    body = ("<?xml version=\"1.0\" encoding=\"utf-8\"?><KeyInfo>"
            f"<Start>{sas_time(start)}</Start><Expiry>{sas_time(expiry)}</Expiry></KeyInfo>")
    url = with_service_query(service_url, "restype=service&comp=userdelegationkey")
    headers = {"x-ms-version": SAS_VERSION, "Content-Type": "application/xml",
               "Authorization": f"Bearer {await bearer()}"}
    try:
        response = await send(http, "POST", parsed_url(url), headers, content=body.encode())
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise transport_error(exc, "POST", url) from None
    if response.status_code == 403:
        raise BlobError(403, "AuthorizationPermissionMismatch",
                        f"cannot get a user-delegation key: your login lacks {KEY_ACTION} on "
                        "the storage account (grant Storage Blob Data Contributor, or Storage "
                        "Blob Delegator, at account scope)", method="POST", url=url)
    if response.status_code != 200:
        raise error_from(response)
    return parse_key(response.content)


def parse_key(xml: bytes) -> UserDelegationKey:
    """The ``<UserDelegationKey>`` document; ValueError when a field is missing."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        raise ValueError("user-delegation key answer: not XML") from None

    def text(tag: str, required: bool = True) -> str:
        found = root.findtext(tag)
        if found is None and required:
            raise ValueError(f"user-delegation key answer: <{tag}> is missing")
        return (found or "").strip()

    return UserDelegationKey(
        signed_oid=text("SignedOid"), signed_tid=text("SignedTid"),
        signed_start=text("SignedStart"), signed_expiry=text("SignedExpiry"),
        signed_service=text("SignedService"), signed_version=text("SignedVersion"),
        value=text("Value"),
        signed_delegated_user_tid=text("SignedDelegatedUserTid", required=False))


def blob_sas(
    key: UserDelegationKey, address: ContainerAddress, blob_name: str, *,
    permission: str, expiry: datetime, start: datetime | None = None,
) -> str:
    """The query string of a blob-scoped (``sr=b``) user-delegation SAS, ``sig`` last.

    ``spr=https`` when the container is reached over HTTPS; no ``spr`` for a loopback http
    endpoint (the sandbox, Azurite), which an https-only SAS could not be used on.
    """
    fields = {
        "st": sas_time(start) if start is not None else "",
        "se": sas_time(expiry),
        "sp": permission,
        "spr": "https" if address.https else "",
        "sv": SAS_VERSION,
        "sr": "b",
        "skoid": key.signed_oid, "sktid": key.signed_tid, "skt": key.signed_start,
        "ske": key.signed_expiry, "sks": key.signed_service, "skv": key.signed_version,
        "skdutid": key.signed_delegated_user_tid,
    }
    resource = f"/blob/{address.account}/{address.container}/{blob_name}"
    lines = [
        permission, fields["st"], fields["se"], resource,
        key.signed_oid, key.signed_tid, key.signed_start, key.signed_expiry,
        key.signed_service, key.signed_version,
        "", "", "",  # saoid, suoid, scid
        key.signed_delegated_user_tid, "",  # skdutid, sduoid
        "", fields["spr"], SAS_VERSION, "b", "", "",  # sip, spr, sv, sr, snapshot, ses
        "", "",  # srh, srq
        "", "", "", "", "",  # rscc, rscd, rsce, rscl, rsct
    ]
    string_to_sign = "\n".join(lines)
    digest = hmac.new(base64.b64decode(key.value), string_to_sign.encode("utf-8"),
                      hashlib.sha256).digest()
    query = {name: value for name, value in fields.items() if value}
    query["sig"] = base64.b64encode(digest).decode("ascii")
    return urlencode(query, quote_via=quote, safe="")


def sas_time(moment: datetime) -> str:
    """UTC, whole seconds, ``Z``: the SDK's format for ``st``/``se`` and the key's times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_service_query(service_url: str, query: str) -> str:
    parts = urlsplit(service_url)
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
