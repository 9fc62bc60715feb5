"""Service SAS for blobs (``sr=b``) and containers (``sr=c``): signing and verification.

Follows Azure Storage's "Create a service SAS" document. The signature is an HMAC-SHA256,
keyed with the base64-decoded account key, over a newline-joined string-to-sign whose
fields depend on the signed version ``sv``:

- 2020-12-06 and later: sp, st, se, canonicalized resource, si, sip, spr, sv, sr,
  signed snapshot time, ses, rscc, rscd, rsce, rscl, rsct;
- 2018-11-09 up to 2020-12-06: the same without ses;
- 2015-04-05 up to 2018-11-09: sp, st, se, canonicalized resource, si, sip, spr, sv,
  rscc, rscd, rsce, rscl, rsct.

The canonicalized resource is ``/blob/<account>/<container>`` for a container SAS and
``/blob/<account>/<container>/<blob>`` for a blob SAS. The verifier builds it from the
*request's* path, as Azure does, so a SAS presented for another blob or container fails
with a signature mismatch (403 ``AuthenticationFailed``), not with a resource-type code:
``AuthorizationResourceTypeMismatch`` belongs to account SAS ``srt`` checks.

Refusals (all raised as :class:`SasError`):

- no ``sig`` at all: 403 ``NoAuthenticationInformation``. The common error-code table
  lists that code with 401; 403 is our choice, matching Azurite's status for an
  unauthenticated request to a private container (Azurite's code is ``AuthorizationFailure``);
- malformed or missing mandatory fields, an unsupported ``sv``, a signature mismatch, a
  request outside ``st``..``se``, an unknown stored access policy: 403
  ``AuthenticationFailed`` with an ``AuthenticationErrorDetail`` saying which;
- ``spr=https`` on plain HTTP: 403 ``AuthorizationProtocolMismatch``;
- a client address outside ``sip``: 403 ``AuthorizationSourceIPMismatch``;
- a missing permission letter: 403 ``AuthorizationPermissionMismatch``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Final, Literal
from urllib.parse import quote

SasResource = Literal["b", "c"]

OLDEST_SAS_VERSION: Final = "2015-04-05"
"""The oldest ``sv`` the verifier knows the string-to-sign of."""
DEFAULT_SAS_VERSION: Final = "2025-11-05"
"""The ``sv`` :func:`sign_blob_sas` and :func:`sign_container_sas` write by default."""

_WITH_SIGNED_RESOURCE: Final = "2018-11-09"
_WITH_ENCRYPTION_SCOPE: Final = "2020-12-06"
_RESOURCE: Final = "<canonicalized resource>"

# Field order of the string-to-sign per signed version, newest first.
_FIELDS_2020_12_06: Final[tuple[str, ...]] = (
    "sp", "st", "se", _RESOURCE, "si", "sip", "spr", "sv", "sr", "snapshot", "ses",
    "rscc", "rscd", "rsce", "rscl", "rsct",
)
_FIELDS_2018_11_09: Final[tuple[str, ...]] = tuple(f for f in _FIELDS_2020_12_06 if f != "ses")
_FIELDS_2015_04_05: Final[tuple[str, ...]] = tuple(
    f for f in _FIELDS_2018_11_09 if f not in ("sr", "snapshot")
)

# The order Azure's SDKs write the query parameters in; any order verifies.
_QUERY_ORDER: Final = (
    "st", "se", "sp", "sip", "spr", "sv", "sr", "snapshot", "ses", "si",
    "rscc", "rscd", "rsce", "rscl", "rsct",
)

_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_SAS_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,7}))?)?Z)?"
)

AUTHENTICATION_FAILED_MESSAGE: Final = (
    "Server failed to authenticate the request. Make sure the value of Authorization header "
    "is formed correctly including the signature."
)


class SasError(Exception):
    """A SAS refused, in Azure Storage's terms.

    Attributes:
        status: The HTTP status (403 for every SAS refusal).
        code: The Azure error code, e.g. ``AuthenticationFailed``.
        message: The service's message for that code.
        details: Extra elements of the XML error body, e.g. ``AuthenticationErrorDetail``.
    """

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, str] | None = None
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, str] = dict(details or {})
        extra = "".join(f" {name}: {value}" for name, value in self.details.items())
        super().__init__(f"{status} {code}: {message}{extra}")


def authentication_failed(detail: str) -> SasError:
    return SasError(
        403, "AuthenticationFailed", AUTHENTICATION_FAILED_MESSAGE,
        {"AuthenticationErrorDetail": detail},
    )


# ------------------------------------------------------------------------------- signing


def canonicalized_resource(account: str, container: str, blob: str | None = None) -> str:
    """The resource line of the string-to-sign: ``/blob/<account>/<container>[/<blob>]``."""
    resource = f"/blob/{account}/{container}"
    return f"{resource}/{blob}" if blob is not None else resource


def string_to_sign(fields: Mapping[str, str], resource: str) -> str:
    """The service SAS string-to-sign for the signed version in ``fields["sv"]``.

    Args:
        fields: The SAS query parameters, already URL-decoded; absent ones count as empty.
        resource: The canonicalized resource (see :func:`canonicalized_resource`).

    Returns:
        The newline-joined string the signature is computed over.
    """
    version = fields.get("sv", "")
    if version >= _WITH_ENCRYPTION_SCOPE:
        order = _FIELDS_2020_12_06
    elif version >= _WITH_SIGNED_RESOURCE:
        order = _FIELDS_2018_11_09
    else:
        order = _FIELDS_2015_04_05
    return "\n".join(resource if name == _RESOURCE else fields.get(name, "") for name in order)


def compute_signature(account_key: str, to_sign: str) -> str:
    """Base64 HMAC-SHA256 of ``to_sign`` keyed with the base64-decoded account key."""
    digest = hmac.new(base64.b64decode(account_key), to_sign.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def format_sas_time(moment: datetime) -> str:
    """``2025-01-31T12:00:00Z``: the form Azure's SDKs write ``st`` and ``se`` in."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sign(
    resource_kind: SasResource,
    account: str,
    account_key: str,
    container: str,
    blob: str | None,
    permissions: str,
    expiry: datetime | str,
    start: datetime | str | None,
    ip: str | None,
    protocol: str | None,
    version: str,
    optional: Mapping[str, str | None],
) -> str:
    fields: dict[str, str] = {
        "sp": permissions,
        "se": expiry if isinstance(expiry, str) else format_sas_time(expiry),
        "sv": version,
        "sr": resource_kind,
    }
    if start is not None:
        fields["st"] = start if isinstance(start, str) else format_sas_time(start)
    if ip:
        fields["sip"] = ip
    if protocol:
        fields["spr"] = protocol
    fields.update({name: value for name, value in optional.items() if value})
    signature = compute_signature(
        account_key, string_to_sign(fields, canonicalized_resource(account, container, blob))
    )
    ordered = [name for name in _QUERY_ORDER if name in fields]
    pairs = [(name, fields[name]) for name in ordered] + [("sig", signature)]
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)


def sign_blob_sas(
    account: str,
    account_key: str,
    container: str,
    blob: str,
    permissions: str,
    expiry: datetime | str,
    *,
    start: datetime | str | None = None,
    ip: str | None = None,
    protocol: str | None = None,
    version: str = DEFAULT_SAS_VERSION,
    encryption_scope: str | None = None,
    cache_control: str | None = None,
    content_disposition: str | None = None,
    content_encoding: str | None = None,
    content_language: str | None = None,
    content_type: str | None = None,
) -> str:
    """A service SAS for one blob, as a query string without the leading ``?``.

    Args:
        account: Storage account name.
        account_key: The account key, base64.
        container: Container name.
        blob: Blob name (may contain ``/``).
        permissions: Letters in Azure's order, e.g. ``"racw"``.
        expiry: ``se``; a datetime (naive means UTC) or a string used as is.
        start: ``st``, optional.
        ip: ``sip``, one address or ``a-b``.
        protocol: ``spr``: ``"https"`` or ``"https,http"``; omitted allows both.
        version: ``sv``; decides the string-to-sign layout.
        encryption_scope: ``ses`` (signed only from 2020-12-06).
        cache_control: ``rscc``.
        content_disposition: ``rscd``.
        content_encoding: ``rsce``.
        content_language: ``rscl``.
        content_type: ``rsct``.

    Returns:
        ``st=…&se=…&sp=…&sv=…&sr=b&sig=…`` with every value percent-encoded.
    """
    return _sign(
        "b", account, account_key, container, blob, permissions, expiry, start, ip, protocol,
        version,
        {"ses": encryption_scope, "rscc": cache_control, "rscd": content_disposition,
         "rsce": content_encoding, "rscl": content_language, "rsct": content_type},
    )


def sign_container_sas(
    account: str,
    account_key: str,
    container: str,
    permissions: str,
    expiry: datetime | str,
    *,
    start: datetime | str | None = None,
    ip: str | None = None,
    protocol: str | None = None,
    version: str = DEFAULT_SAS_VERSION,
    encryption_scope: str | None = None,
    cache_control: str | None = None,
    content_disposition: str | None = None,
    content_encoding: str | None = None,
    content_language: str | None = None,
    content_type: str | None = None,
) -> str:
    """A service SAS for a whole container (``sr=c``); arguments as :func:`sign_blob_sas`."""
    return _sign(
        "c", account, account_key, container, None, permissions, expiry, start, ip, protocol,
        version,
        {"ses": encryption_scope, "rscc": cache_control, "rscd": content_disposition,
         "rsce": content_encoding, "rscl": content_language, "rsct": content_type},
    )


# --------------------------------------------------------------------------- verification


def has_sas(query: Mapping[str, str]) -> bool:
    """Whether the query carries a signature at all."""
    return bool(query.get("sig"))


def parse_sas_time(value: str) -> datetime:
    """Parse ``st``/``se``: ``YYYY-MM-DD``, ``…Thh:mmZ``, ``…Thh:mm:ssZ`` or with fractions.

    Raises:
        ValueError: The value is none of Azure's accepted ISO 8601 UTC forms.
    """
    match = _SAS_TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"not an ISO 8601 UTC time: {value!r}")
    day = datetime.strptime(match["date"], "%Y-%m-%d").replace(tzinfo=UTC)
    if match["hour"] is None:
        return day
    fraction = (match["fraction"] or "0").ljust(6, "0")[:6]
    return day.replace(
        hour=int(match["hour"]), minute=int(match["minute"]),
        second=int(match["second"] or 0), microsecond=int(fraction),
    )


def _http_date(moment: datetime | None) -> str:
    return format_datetime(moment, usegmt=True) if moment is not None else ""


def check_time_window(query: Mapping[str, str], now: datetime) -> None:
    try:
        start = parse_sas_time(query["st"]) if query.get("st") else None
        expiry = parse_sas_time(query["se"]) if query.get("se") else None
    except ValueError as exc:
        raise authentication_failed(f"Signature fields not well formed: {exc}.") from None
    if (start is not None and now < start) or (expiry is not None and now > expiry):
        # Azure's wording; it names the whole window and the service's current time.
        raise authentication_failed(
            "Signature not valid in the specified time frame: "
            f"Start [{_http_date(start)}] - Expiry [{_http_date(expiry)}] - "
            f"Current [{_http_date(now)}]"
        )


def check_ip(allowed: str, client_ip: str) -> None:
    try:
        address = ipaddress.ip_address(client_ip)
        low_text, _, high_text = allowed.partition("-")
        low = ipaddress.ip_address(low_text)
        high = ipaddress.ip_address(high_text) if high_text else low
    except ValueError:
        raise authentication_failed(f"sip {allowed!r} is not an IP address or range.") from None
    same_family = address.version == low.version == high.version
    if not same_family or not int(low) <= int(address) <= int(high):
        raise SasError(
            403, "AuthorizationSourceIPMismatch",
            f"This request is not authorized to perform this operation using this source IP "
            f"{client_ip}.",
        )


def verify_service_sas(
    query: Mapping[str, str],
    *,
    account: str,
    account_key: str,
    container: str,
    blob: str | None,
    any_of: str,
    now: datetime,
    https: bool = True,
    client_ip: str | None = None,
) -> None:
    """Check a service SAS for one request the way Azure Storage does.

    Args:
        query: The request's query parameters, URL-decoded.
        account: The account the request addresses.
        account_key: That account's key, base64.
        container: The container the request addresses.
        blob: The blob the request addresses, or None for a container-level request.
        any_of: Permission letters of which the SAS must hold at least one.
        now: The service's current time (aware).
        https: Whether the request came over HTTPS (``spr=https`` refuses plain HTTP).
        client_ip: The caller's address for the ``sip`` check; None skips that check.

    Raises:
        SasError: The SAS is missing, invalid, expired, not yet valid, for another
            resource, or lacks the permission.
    """
    if not has_sas(query):
        raise SasError(
            403, "NoAuthenticationInformation",
            "Server failed to authenticate the request. Please refer to the information in "
            "the www-authenticate header.",
        )
    for mandatory in ("sv", "sr"):
        if not query.get(mandatory):
            raise authentication_failed(f"{mandatory} is mandatory. Cannot be empty")
    version = query["sv"]
    if not _VERSION.fullmatch(version) or version < OLDEST_SAS_VERSION:
        raise authentication_failed(
            f"The signed version sv={version!r} is not supported; the sandbox verifies "
            f"service SAS versions {OLDEST_SAS_VERSION} and later."
        )
    resource_kind = query["sr"]
    if resource_kind not in ("b", "c"):
        raise authentication_failed(
            f"The signed resource sr={resource_kind!r} is not supported; the sandbox has "
            "no snapshots or versions and accepts sr=b (blob) and sr=c (container)."
        )
    if resource_kind == "b" and blob is None:
        raise SasError(
            403, "AuthorizationResourceTypeMismatch",
            "This request is not authorized to perform this operation using this resource type.",
        )
    if not query.get("si"):
        for mandatory in ("se", "sp"):
            if not query.get(mandatory):
                raise authentication_failed(f"{mandatory} is mandatory. Cannot be empty")

    resource = canonicalized_resource(account, container, blob if resource_kind == "b" else None)
    to_sign = string_to_sign(query, resource)
    try:
        expected = compute_signature(account_key, to_sign)
        presented = base64.b64decode(query["sig"], validate=True)
    except (binascii.Error, ValueError):
        presented = b""
    if not hmac.compare_digest(base64.b64decode(expected), presented):
        raise authentication_failed(
            f"Signature did not match. String to sign used was {to_sign}"
        )
    if query.get("si"):
        raise authentication_failed(
            f"The signed identifier {query['si']!r} does not name a stored access policy; "
            "the sandbox's containers have none."
        )

    check_time_window(query, now)
    protocol = query.get("spr", "")
    if protocol not in ("", "https", "https,http"):
        raise authentication_failed(f"spr={protocol!r} is not 'https' or 'https,http'.")
    if protocol == "https" and not https:
        raise SasError(
            403, "AuthorizationProtocolMismatch",
            "This request is not authorized to perform this operation using this protocol.",
        )
    if query.get("sip") and client_ip is not None:
        check_ip(query["sip"], client_ip)
    if not set(any_of) & set(query.get("sp", "")):
        raise SasError(
            403, "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        )
