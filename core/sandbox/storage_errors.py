"""Azure Storage's refusals and conditional headers, shared by the blob store and its routes.

:class:`StorageError` carries what the service answers (status, ``x-ms-error-code``, the
XML ``Message`` and extra elements); :class:`Conditions` is a request's ``If-*`` headers,
judged against a blob the way the Blob service judges them (Learn, "Specifying conditional
headers for Blob service operations"): a read answers 304 where a write answers 412.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

from core.sandbox.sas import SasError


class StorageError(Exception):
    """An operation refused, in Azure Storage's terms.

    Attributes:
        status: HTTP status, e.g. 404.
        code: Azure error code, e.g. ``BlobNotFound``; also sent as ``x-ms-error-code``.
        message: The first line of the XML ``Message``.
        details: Extra XML elements, e.g. ``{"AuthenticationErrorDetail": "..."}``.
        headers: Extra response headers, e.g. ``Content-Range`` on 416.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, str] = dict(details or {})
        self.headers: dict[str, str] = dict(headers or {})
        extra = "".join(f" {name}: {value}" for name, value in self.details.items())
        super().__init__(f"{status} {code}: {message}{extra}")

    @classmethod
    def from_sas(cls, error: SasError) -> StorageError:
        """The same refusal, raised from the store."""
        return cls(error.status, error.code, error.message, details=error.details)


class NotModified(Exception):
    """A read's ``If-None-Match``/``If-Modified-Since`` held: answer 304 without a body."""


@dataclass(frozen=True, slots=True)
class Conditions:
    """A request's conditional headers (None: not sent)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Conditions:
        """Read the four headers.

        Raises:
            StorageError: 400 ``InvalidHeaderValue`` for a date that is not an HTTP date.
        """
        return cls(
            if_match=headers.get("if-match"),
            if_none_match=headers.get("if-none-match"),
            if_modified_since=_http_date_header(headers, "if-modified-since"),
            if_unmodified_since=_http_date_header(headers, "if-unmodified-since"),
        )

    def check_write(self, etag: str | None, last_modified: datetime | None) -> None:
        """Judge a write against the blob's ETag and Last-Modified (None: no blob).

        Raises:
            StorageError: 409 ``BlobAlreadyExists`` for ``If-None-Match: *`` over an
                existing blob, else 412 ``ConditionNotMet`` for any condition that fails.
        """
        if self.if_none_match is not None and etag is not None and etag_matches(
            self.if_none_match, etag
        ):
            if self.if_none_match.strip() == "*":
                raise StorageError(409, "BlobAlreadyExists", "The specified blob already exists.")
            raise condition_not_met()
        if not self._others_hold(etag, last_modified):
            raise condition_not_met()

    def check_read(self, etag: str, last_modified: datetime) -> None:
        """Judge a read (Get Blob, Get Blob Properties) of an existing blob.

        Raises:
            NotModified: ``If-None-Match`` matched, or nothing changed since
                ``If-Modified-Since``.
            StorageError: 412 ``ConditionNotMet`` for a failed ``If-Match`` or
                ``If-Unmodified-Since``.
        """
        if self.if_match is not None and not etag_matches(self.if_match, etag):
            raise condition_not_met()
        if self.if_unmodified_since is not None and _after(last_modified, self.if_unmodified_since):
            raise condition_not_met()
        if self.if_none_match is not None and etag_matches(self.if_none_match, etag):
            raise NotModified
        if self.if_modified_since is not None and not _after(last_modified, self.if_modified_since):
            raise NotModified

    def _others_hold(self, etag: str | None, last_modified: datetime | None) -> bool:
        if self.if_match is not None and (etag is None or not etag_matches(self.if_match, etag)):
            return False
        if last_modified is None:
            # Date conditions on a blob that does not exist: the service lets them pass.
            return True
        if self.if_unmodified_since is not None and _after(last_modified, self.if_unmodified_since):
            return False
        return not (
            self.if_modified_since is not None
            and not _after(last_modified, self.if_modified_since)
        )


def _after(moment: datetime, reference: datetime) -> bool:
    """Whether ``moment`` is later than ``reference`` at HTTP dates' one-second grain."""
    return int(moment.timestamp()) > int(reference.timestamp())


def _http_date_header(headers: Mapping[str, str], name: str) -> datetime | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_header(name, value, "Dates are RFC 1123, e.g. Sun, 06 Dec 2026 19:00:00 GMT.")
    return moment


def etag_matches(condition: str, etag: str) -> bool:
    """Whether an ``If-Match``/``If-None-Match`` value names this ETag (or is ``*``)."""
    candidates = [c.strip() for c in condition.split(",")]
    return "*" in candidates or etag in candidates or etag.strip('"') in candidates


def condition_not_met() -> StorageError:
    """412 ``ConditionNotMet``: an If-* header of a write (or a read's If-Match) failed."""
    return StorageError(
        412, "ConditionNotMet",
        "The condition specified using HTTP conditional header(s) is not met.",
    )


def sealed() -> StorageError:
    """409 ``BlobIsSealed``: an append blob that was sealed does not change."""
    return StorageError(
        409, "BlobIsSealed",
        "The specified blob is sealed, and its contents can't be modified unless the blob is "
        "re-created after a delete.",
    )


def invalid_blob_type() -> StorageError:
    """409 ``InvalidBlobType``: e.g. Append Block on a block blob."""
    return StorageError(409, "InvalidBlobType", "The blob type is invalid for this operation.")


def invalid_header(name: str, value: str, note: str = "") -> StorageError:
    """400 ``InvalidHeaderValue`` naming the header, as the service reports it."""
    message = "The value for one of the HTTP headers is not in the correct format."
    return StorageError(
        400, "InvalidHeaderValue", f"{message} {note}".strip(),
        details={"HeaderName": name, "HeaderValue": value},
    )


def body_too_large(limit: int) -> StorageError:
    """413 ``RequestBodyTooLarge`` with the limit in ``MaxLimit``."""
    return StorageError(
        413, "RequestBodyTooLarge",
        "The request body is too large and exceeds the maximum permissible limit.",
        details={"MaxLimit": str(limit)},
    )
