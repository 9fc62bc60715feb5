"""User delegation keys and the SAS signed with them (azure-storage-and-scale-sets.md 2).

Get User Delegation Key (``POST /{account}/?restype=service&comp=userdelegationkey``) takes a
``KeyInfo`` (``Start``, ``Expiry``, optionally ``DelegatedUserTid``) from a caller with a
bearer token and answers a ``UserDelegationKey`` for that caller's object id. The key is not
stored: its ``Value`` is an HMAC, under the account's key, of the fields a SAS carries back
(``skoid``, ``sktid``, ``skt``, ``ske``, ``sks``, ``skv`` and ``skdutid``), so verifying a
SAS recomputes it. Rotating the account key revokes every key, as on Azure.

Verification rebuilds the string-to-sign of the SAS's ``sv`` (the three layouts of 2.2, and
the older ones of 2018-11-09 and 2020-02-10), then checks the key's owner and window, the
SAS's window, protocol, address and permission letters, with the 403 codes of section 8.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from core.sandbox.sas import (
    SasError,
    authentication_failed,
    canonicalized_resource,
    check_ip,
    check_time_window,
    format_sas_time,
    parse_sas_time,
)
from core.sandbox.storage_errors import StorageError

KEY_MIN_VERSION: Final = "2018-11-09"
"""Get User Delegation Key exists from this x-ms-version on."""
MAX_KEY_LIFETIME: Final = timedelta(days=7)
MAX_KEY_INFO_BYTES: Final = 4096
_PRINCIPAL_NAMESPACE: Final = uuid.UUID("5d1f6a3e-8f0c-4c8b-9d0e-6b7a1f2c3d4e")
_RESOURCE: Final = "<canonicalized resource>"
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEY_FIELDS: Final = ("skoid", "sktid", "skt", "ske", "sks", "skv")

# The string-to-sign per signed version (reference 2.2), newest first.
_HEAD: Final = ("sp", "st", "se", _RESOURCE, "skoid", "sktid", "skt", "ske", "sks", "skv")
_RESPONSE: Final = ("rscc", "rscd", "rsce", "rscl", "rsct")
_LAYOUTS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("2026-04-06", (*_HEAD, "saoid", "suoid", "scid", "skdutid", "sduoid", "sip", "spr", "sv",
                    "sr", "snapshot", "ses", "srh", "srq", *_RESPONSE)),
    ("2025-07-05", (*_HEAD, "saoid", "suoid", "scid", "skdutid", "sduoid", "sip", "spr", "sv",
                    "sr", "snapshot", "ses", *_RESPONSE)),
    ("2020-12-06", (*_HEAD, "saoid", "suoid", "scid", "sip", "spr", "sv", "sr", "snapshot",
                    "ses", *_RESPONSE)),
    ("2020-02-10", (*_HEAD, "saoid", "suoid", "scid", "sip", "spr", "sv", "sr", "snapshot",
                    *_RESPONSE)),
    (KEY_MIN_VERSION, (*_HEAD, "sip", "spr", "sv", "sr", *_RESPONSE)),
)


def object_id(principal: str) -> str:
    """The Entra object id the sandbox gives a principal (stable across runs)."""
    return str(uuid.uuid5(_PRINCIPAL_NAMESPACE, f"principal:{principal}"))


def is_user_delegation_sas(query: Mapping[str, str]) -> bool:
    return bool(query.get("skoid"))


@dataclass(frozen=True, slots=True)
class UserDelegationKey:
    signed_oid: str
    signed_tid: str
    signed_start: str
    signed_expiry: str
    signed_version: str
    delegated_tid: str
    value: str
    signed_service: str = "b"

    def to_xml(self) -> bytes:
        delegated = (f"<SignedDelegatedUserTid>{escape(self.delegated_tid)}"
                     "</SignedDelegatedUserTid>" if self.delegated_tid else "")
        return (
            '<?xml version="1.0" encoding="utf-8"?><UserDelegationKey>'
            f"<SignedOid>{self.signed_oid}</SignedOid><SignedTid>{self.signed_tid}</SignedTid>"
            f"<SignedStart>{self.signed_start}</SignedStart>"
            f"<SignedExpiry>{self.signed_expiry}</SignedExpiry>"
            f"<SignedService>{self.signed_service}</SignedService>"
            f"<SignedVersion>{self.signed_version}</SignedVersion>{delegated}"
            f"<Value>{self.value}</Value></UserDelegationKey>"
        ).encode()


def key_value(account_key: str, fields: Mapping[str, str]) -> str:
    """The key's ``Value``: what a SAS's key fields (``skoid`` .. ``skdutid``) sign with."""
    material = "\n".join(fields.get(name, "") for name in (*_KEY_FIELDS, "skdutid"))
    digest = hmac.new(base64.b64decode(account_key), b"user-delegation-key\n" +
                      material.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def issue_key(
    body: bytes, *, account_key: str, principal: str, tenant: str, version: str, now: datetime
) -> UserDelegationKey:
    """A key for ``principal`` from a ``KeyInfo`` body.

    Raises:
        StorageError: 400 for a body that is not a ``KeyInfo``, dates that are not ISO 8601
            UTC, an expiry past 7 days from now or before the start.
    """
    start_text, expiry_text, delegated = _key_info(body)
    start = _key_time(start_text, "Start") if start_text else now
    expiry = _key_time(expiry_text, "Expiry")
    if expiry <= now or expiry <= start or expiry - now > MAX_KEY_LIFETIME:
        raise _invalid_node("Expiry", expiry_text, "The expiry must be after the start and "
                            "now, and within 7 days of the current time.")
    if start - now > MAX_KEY_LIFETIME:
        raise _invalid_node("Start", start_text, "The start must be within 7 days of the "
                            "current time.")
    fields = {"skoid": object_id(principal), "sktid": tenant, "skt": format_sas_time(start),
              "ske": format_sas_time(expiry), "sks": "b", "skv": version, "skdutid": delegated}
    return UserDelegationKey(
        signed_oid=fields["skoid"], signed_tid=tenant, signed_start=fields["skt"],
        signed_expiry=fields["ske"], signed_version=version, delegated_tid=delegated,
        value=key_value(account_key, fields))


def _key_info(body: bytes) -> tuple[str, str, str]:
    if len(body) > MAX_KEY_INFO_BYTES or b"<!DOCTYPE" in body.upper():
        raise _invalid_xml()
    try:
        root = ElementTree.fromstring(body)  # small, and no DTD: nothing to expand
    except ElementTree.ParseError:
        raise _invalid_xml() from None
    if root.tag != "KeyInfo":
        raise _invalid_xml()
    values = {child.tag: (child.text or "").strip() for child in root}
    if not values.get("Expiry"):
        raise StorageError(400, "InvalidXmlDocument", "XML specified is not syntactically "
                           "valid.", details={"XmlNodeName": "Expiry",
                                              "Reason": "Expiry is required."})
    return values.get("Start", ""), values["Expiry"], values.get("DelegatedUserTid", "")


def _key_time(text: str, node: str) -> datetime:
    try:
        return parse_sas_time(text)
    except ValueError:
        raise _invalid_node(node, text, "An ISO 8601 UTC time such as "
                            "2026-11-01T10:00:00Z.") from None


def _invalid_xml() -> StorageError:
    return StorageError(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")


def _invalid_node(node: str, value: str, reason: str) -> StorageError:
    # The code for these refusals is UNCONFIRMED (reference section 8); this is the
    # service's code for an XML value it cannot accept.
    return StorageError(400, "InvalidXmlNodeValue",
                        "The value for one of the XML nodes is not in the correct format.",
                        details={"XmlNodeName": node, "XmlNodeValue": value, "Reason": reason})


# --------------------------------------------------------------------------- verification


def string_to_sign(fields: Mapping[str, str], resource: str) -> str:
    """The user delegation SAS string-to-sign for ``fields["sv"]``."""
    version = fields.get("sv", "")
    order = next((layout for since, layout in _LAYOUTS if version >= since), _LAYOUTS[-1][1])
    return "\n".join(resource if name == _RESOURCE else fields.get(name, "") for name in order)


def verify_user_delegation_sas(
    query: Mapping[str, str],
    *,
    account: str,
    account_key: str,
    container: str,
    blob: str | None,
    any_of: str,
    now: datetime,
    owners: Mapping[str, str],
    tenant: str,
    https: bool = True,
    client_ip: str | None = None,
) -> str:
    """Check a user delegation SAS; the principal whose key signed it.

    Args:
        owners: Principal by object id: who may hold keys (their data role is checked by
            the caller; every sandbox principal holds Storage Blob Data Contributor).

    Raises:
        SasError: As ``core.sandbox.sas.verify_service_sas``, and for a key that is not the
            service's (unknown owner or tenant, outside its window).
    """
    for mandatory in ("sv", "sr", "se", "sp", *_KEY_FIELDS):
        if not query.get(mandatory):
            raise authentication_failed(f"{mandatory} is mandatory. Cannot be empty")
    version = query["sv"]
    if not _VERSION.fullmatch(version) or version < KEY_MIN_VERSION:
        raise authentication_failed(
            f"The signed version sv={version!r} is not supported for a user delegation SAS; "
            f"it needs {KEY_MIN_VERSION} or later.")
    resource_kind = query["sr"]
    if resource_kind not in ("b", "c"):
        raise authentication_failed(f"The signed resource sr={resource_kind!r} is not "
                                    "supported; the sandbox accepts sr=b and sr=c.")
    if resource_kind == "b" and blob is None:
        raise SasError(403, "AuthorizationResourceTypeMismatch", "This request is not "
                       "authorized to perform this operation using this resource type.")
    if query.get("si"):
        raise authentication_failed("A user delegation SAS cannot name a stored access policy.")
    for unsupported in ("sduoid", "srh", "srq"):
        if query.get(unsupported):
            raise authentication_failed(f"{unsupported} is not supported by the sandbox.")
    resource = canonicalized_resource(account, container,
                                      blob if resource_kind == "b" else None)
    to_sign = string_to_sign(query, resource)
    expected = hmac.new(base64.b64decode(key_value(account_key, query)),
                        to_sign.encode("utf-8"), hashlib.sha256).digest()
    try:
        presented = base64.b64decode(query.get("sig", ""), validate=True)
    except (binascii.Error, ValueError):
        presented = b""
    if not hmac.compare_digest(expected, presented):
        raise authentication_failed(f"Signature did not match. String to sign used was {to_sign}")
    owner = owners.get(query["skoid"])
    if owner is None or query["sktid"] != tenant:
        raise authentication_failed("The signed key's object id or tenant is not known to "
                                    "this account.")
    try:
        key_start, key_expiry = parse_sas_time(query["skt"]), parse_sas_time(query["ske"])
    except ValueError as exc:
        raise authentication_failed(f"Signed key fields not well formed: {exc}.") from None
    if not key_start <= now <= key_expiry:
        raise authentication_failed("The signed key is not valid at the current time "
                                    f"(skt {query['skt']}, ske {query['ske']}).")
    check_time_window(query, now)
    protocol = query.get("spr", "")
    if protocol not in ("", "https", "https,http"):
        raise authentication_failed(f"spr={protocol!r} is not 'https' or 'https,http'.")
    if protocol == "https" and not https:
        raise SasError(403, "AuthorizationProtocolMismatch", "This request is not authorized "
                       "to perform this operation using this protocol.")
    if query.get("sip") and client_ip is not None:
        check_ip(query["sip"], client_ip)
    if not set(any_of) & set(query["sp"]):
        raise SasError(403, "AuthorizationPermissionMismatch", "This request is not "
                       "authorized to perform this operation using this permission.")
    return owner
