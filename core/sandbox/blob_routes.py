"""The append-blob data plane over HTTP, path style like Azurite.

URLs are ``/<account>/<container>/<blob name, may contain slashes>?<SAS>``. Served:

- ``PUT`` with ``x-ms-blob-type: AppendBlob`` (empty) or ``BlockBlob`` (the content):
  Put Blob (201);
- ``PUT ?comp=appendblock``: Append Block (201);
- ``PUT ?comp=seal``: Append Blob Seal (200);
- ``GET``, whole (200) or with ``x-ms-range``/``Range`` (206, 416 ``InvalidRange``);
- ``HEAD``: Get Blob Properties (200; errors without a body);
- ``DELETE``: Delete Blob (202).

Conditional headers (``If-Match``, ``If-None-Match``, ``If-Modified-Since``,
``If-Unmodified-Since``) are honoured on every blob operation: 304 for a read, 412
``ConditionNotMet`` (409 ``BlobAlreadyExists`` for ``If-None-Match: *``) for a write.

Every request needs a bearer token, a user delegation SAS or a service SAS signed with the
account's key (``core.sandbox.blob_auth``); ``POST /<account>/?restype=service&comp=
userdelegationkey`` (bearer only) issues user delegation keys.
Containers come from configuration: container- and account-level requests are refused
with 403 ``AuthorizationPermissionMismatch``, which is also what the real service answers
when a service SAS asks to create a container. Errors carry Azure's XML body and the
``x-ms-error-code`` header; every response has an ``x-ms-request-id``.

``x-ms-version`` must be one of :data:`STORAGE_VERSIONS` (else 400 ``InvalidHeaderValue``)
and is echoed back. Without it the request is processed at the newest version not after the
SAS's ``sv`` (the newest we know when ``sv`` is newer still). The real rule for SAS requests
without ``x-ms-version`` is UNCONFIRMED; this is our choice.

The ``Date`` header comes from the server (uvicorn adds it), not from this app.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import datetime
from email.utils import format_datetime
from typing import Final
from xml.sax.saxutils import escape

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from core.sandbox.blob_auth import BlobAuth
from core.sandbox.blobstore import (
    APPEND_BLOB,
    BLOCK_BLOB,
    BlobOperation,
    BlobProperties,
    BlobStore,
    max_put_blob_size,
    parse_query,
)
from core.sandbox.storage_errors import (
    Conditions,
    NotModified,
    StorageError,
    body_too_large,
    invalid_header,
)
from core.sandbox.user_delegation import KEY_MIN_VERSION, MAX_KEY_INFO_BYTES, issue_key

STORAGE_VERSIONS: Final = (
    "2015-02-21", "2015-04-05", "2015-07-08", "2015-12-11", "2016-05-31", "2017-04-17",
    "2017-07-29", "2017-11-09", "2018-03-28", "2018-11-09", "2019-02-02", "2019-07-07",
    "2019-10-10", "2019-12-12", "2020-02-10", "2020-04-08", "2020-06-12", "2020-08-04",
    "2020-10-02", "2020-12-06", "2021-02-12", "2021-04-10", "2021-06-08", "2021-08-06",
    "2021-10-04", "2021-12-02", "2022-11-02", "2023-01-03", "2023-05-03", "2023-08-03",
    "2023-11-03",
    "2024-02-04", "2024-05-04", "2024-08-04", "2024-11-04", "2025-01-05", "2025-05-05",
    "2025-07-05", "2025-11-05", "2026-02-06", "2026-04-06", "2026-06-06", "2026-10-06",
)
"""Blob service versions accepted in ``x-ms-version``: Append Block's first (2015-02-21)
through the newest azure-storage-blob 12.31.1 sends by default (2026-10-06); the list is
Azurite's up to 2025-11-05 plus the SDK's newer ones (reference: storage versions, section 5).
"""
NEWEST_VERSION: Final = STORAGE_VERSIONS[-1]
CREATION_TIME_SINCE: Final = "2017-11-09"
SEALED_SINCE: Final = "2019-12-12"

_METHODS: Final = ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH", "MERGE"]
_DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
_SERVED = (
    "The sandbox serves Put Blob (AppendBlob, BlockBlob), Append Block, Append Blob Seal, "
    "Get Blob, Get Blob Properties and Delete Blob."
)
_ALLOWED = "GET, HEAD, PUT, DELETE"
_RANGE_MD5_LIMIT = 4 * 1024 * 1024
"""``x-ms-range-get-content-md5`` is served for ranges up to 4 MiB (400 above)."""


def create_blob_app(store: BlobStore, auth: BlobAuth | None = None) -> Starlette:
    """The blob endpoint as a Starlette app over ``store``.

    Serve it with uvicorn (which adds ``Date``); mount it at the root, since account names
    are the first path segment. ``auth`` decides who may do what (``core.sandbox.blob_auth``);
    without it only SAS are accepted.
    """
    endpoint = _BlobEndpoint(store, auth or BlobAuth(store, None, tenant=""))
    return Starlette(routes=[Route("/{path:path}", endpoint.handle, methods=_METHODS)])


def effective_version(header: str | None, signed_version: str | None) -> str:
    """The x-ms-version a request is processed at (see the module docstring).

    Raises:
        StorageError: 400 ``InvalidHeaderValue`` for an unknown or malformed ``x-ms-version``.
    """
    if header is not None:
        if header not in STORAGE_VERSIONS:
            raise invalid_header(
                "x-ms-version", header,
                f"Supported versions are {STORAGE_VERSIONS[0]} through {NEWEST_VERSION}.",
            )
        return header
    if signed_version and _DATE_LIKE.fullmatch(signed_version):
        known = [v for v in STORAGE_VERSIONS if v <= signed_version]
        return known[-1] if known else STORAGE_VERSIONS[0]
    return NEWEST_VERSION


def http_date(moment: datetime) -> str:
    """RFC 1123 in GMT, as Azure writes Last-Modified and x-ms-creation-time."""
    return format_datetime(moment, usegmt=True)


def parse_range(value: str, header: str) -> tuple[int, int | None]:
    """``bytes=a-b`` or ``bytes=a-`` as (start, inclusive end or None).

    Raises:
        StorageError: 400 ``InvalidHeaderValue`` for anything else (suffix ranges and
            multiple ranges included: the service does not serve them).
    """
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        raise invalid_header(header, value, "Ranges are bytes=<start>-[<end>].")
    end = match[2]
    return int(match[1]), int(end) if end else None


def property_headers(props: BlobProperties, version: str) -> dict[str, str]:
    """What Get Blob and Get Blob Properties say about a blob at this x-ms-version."""
    headers = {
        "Last-Modified": http_date(props.last_modified),
        "ETag": props.etag,
        "Content-Type": props.content_type,
        "Accept-Ranges": "bytes",
        "x-ms-blob-type": props.blob_type,
        "x-ms-server-encrypted": "true",
        "x-ms-lease-state": "available",
        "x-ms-lease-status": "unlocked",
    }
    if version >= CREATION_TIME_SINCE:
        headers["x-ms-creation-time"] = http_date(props.created)
    if props.blob_type == APPEND_BLOB:
        headers["x-ms-blob-committed-block-count"] = str(props.committed_block_count)
        if version >= SEALED_SINCE:
            headers["x-ms-blob-sealed"] = "true" if props.sealed else "false"
    return headers


class _BlobEndpoint:
    def __init__(self, store: BlobStore, auth: BlobAuth) -> None:
        self.store = store
        self.auth = auth

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        version: str | None = None
        try:
            query = parse_query(request.scope["query_string"].decode("latin-1"))
            version = effective_version(request.headers.get("x-ms-version"), query.get("sv"))
            response = await self._dispatch(request, query, version)
        except StorageError as exc:
            await _drain(request)
            response = self._error(exc, request_id, head=request.method == "HEAD")
        response.headers["x-ms-request-id"] = request_id
        if version is not None:
            response.headers["x-ms-version"] = version
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id is not None:
            response.headers["x-ms-client-request-id"] = client_request_id
        return response

    async def _dispatch(self, request: Request, query: dict[str, str], version: str) -> Response:
        segments = request.scope["path"].lstrip("/").split("/", 2)
        account = segments[0]
        if not account or not self.store.has_account(account):
            raise StorageError(404, "ResourceNotFound", "The specified resource does not exist.")
        if (
            request.method == "POST" and not "".join(segments[1:])
            and query.get("restype") == "service" and query.get("comp") == "userdelegationkey"
        ):
            return await self._user_delegation_key(request, account, version)
        if len(segments) < 3 or not segments[1] or not segments[2]:
            raise StorageError(
                403, "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this "
                "permission. The sandbox's containers come from its configuration; over HTTP "
                f"it serves blobs only. {_SERVED}",
            )
        container, blob = segments[1], segments[2]
        comp = query.get("comp", "").lower()
        method = request.method
        if method not in ("GET", "HEAD", "PUT", "DELETE"):
            raise StorageError(
                405, "UnsupportedHttpVerb",
                f"The resource doesn't support specified Http Verb. {_SERVED}",
                headers={"Allow": _ALLOWED},
            )
        operation = {
            ("PUT", ""): BlobOperation.CREATE,
            ("PUT", "appendblock"): BlobOperation.APPEND,
            ("PUT", "seal"): BlobOperation.SEAL,
            ("GET", ""): BlobOperation.READ,
            ("HEAD", ""): BlobOperation.READ,
            ("DELETE", ""): BlobOperation.DELETE,
        }.get((method, comp))
        if operation is None:
            raise StorageError(
                400, "InvalidQueryParameterValue",
                "Value for one of the query parameters specified in the request URI is invalid.",
                details={"QueryParameterName": "comp", "QueryParameterValue": query["comp"],
                         "Reason": _SERVED},
            )
        target = (account, container, blob)
        self.auth.authorize(
            request.headers, target, query, operation, version=version,
            https=request.scope.get("scheme") == "https",
            client_ip=request.client.host if request.client else None,
        )
        conditions = Conditions.from_headers(request.headers)
        if operation is BlobOperation.CREATE:
            return await self._put_blob(request, target, version, conditions)
        if operation is BlobOperation.DELETE:
            self.store.delete_blob(*target, conditions=conditions)
            # No soft delete in the sandbox: every delete is permanent.
            return Response(status_code=202, headers={"x-ms-delete-type-permanent": "true"})
        if operation is BlobOperation.APPEND:
            return await self._append_block(request, target, version)
        if operation is BlobOperation.SEAL:
            props = self.store.seal(*target, if_match=request.headers.get("if-match"))
            return Response(status_code=200, headers={
                "ETag": props.etag, "Last-Modified": http_date(props.last_modified),
                "x-ms-blob-sealed": "true",
            })
        return self._read(request, target, version, conditions)

    async def _user_delegation_key(
        self, request: Request, account: str, version: str
    ) -> Response:
        """Get User Delegation Key: bearer only; ``KeyInfo`` in, ``UserDelegationKey`` out."""
        principal = self.auth.bearer(request.headers, version)
        if principal is None:
            raise StorageError(
                403, "AuthenticationFailed",
                "Server failed to authenticate the request. Make sure the value of "
                "Authorization header is formed correctly including the signature.",
                details={"AuthenticationErrorDetail": "Get User Delegation Key is authorized "
                         "with a Microsoft Entra bearer token only, not a SAS or Shared Key."})
        if version < KEY_MIN_VERSION:
            raise invalid_header("x-ms-version", version,
                                 f"Get User Delegation Key needs {KEY_MIN_VERSION} or later.")
        length = request.headers.get("content-length")
        if length is not None and _int_header("Content-Length", length) > MAX_KEY_INFO_BYTES:
            raise body_too_large(MAX_KEY_INFO_BYTES)
        key = issue_key(await request.body(), account_key=self.store.account_key(account),
                        principal=principal, tenant=self.auth.tenant, version=version,
                        now=self.store.now())
        return Response(key.to_xml(), status_code=200, media_type="application/xml")

    async def _put_blob(
        self, request: Request, target: tuple[str, str, str], version: str,
        conditions: Conditions,
    ) -> Response:
        blob_type = request.headers.get("x-ms-blob-type")
        if blob_type is None:
            raise StorageError(
                400, "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified.",
                details={"HeaderName": "x-ms-blob-type"},
            )
        if blob_type not in (APPEND_BLOB, BLOCK_BLOB):
            raise invalid_header(
                "x-ms-blob-type", blob_type,
                "The sandbox stores append and block blobs: AppendBlob or BlockBlob.",
            )
        length = request.headers.get("content-length")
        if length is None:
            raise _length_required()
        if blob_type == BLOCK_BLOB:
            return await self._put_block_blob(request, target, version, conditions, length)
        if length.strip() != "0":
            raise invalid_header(
                "Content-Length", length, "An append blob is created empty: Content-Length 0."
            )
        props = self.store.put_append_blob(
            *target,
            if_none_match=conditions.if_none_match,
            if_match=conditions.if_match,
            content_type=request.headers.get("x-ms-blob-content-type"),
        )
        return Response(status_code=201, headers={
            "ETag": props.etag, "Last-Modified": http_date(props.last_modified),
            "x-ms-request-server-encrypted": "true",
        })

    async def _put_block_blob(
        self, request: Request, target: tuple[str, str, str], version: str,
        conditions: Conditions, length_text: str,
    ) -> Response:
        limit = max_put_blob_size(version)
        # Refuse an oversized upload before reading it into memory.
        if _int_header("Content-Length", length_text) > limit:
            raise body_too_large(limit)
        data = await request.body()
        _check_md5(request.headers, data)
        props = self.store.put_block_blob(
            *target, data, conditions=conditions,
            content_type=request.headers.get("x-ms-blob-content-type"),
        )
        headers = {
            "ETag": props.etag, "Last-Modified": http_date(props.last_modified),
            "x-ms-request-server-encrypted": "true",
        }
        if props.content_md5 is not None:
            headers["Content-MD5"] = props.content_md5
        return Response(status_code=201, headers=headers)

    async def _append_block(
        self, request: Request, target: tuple[str, str, str], version: str
    ) -> Response:
        headers = request.headers
        length_text = headers.get("content-length")
        if length_text is None:
            raise _length_required()
        length = _int_header("Content-Length", length_text)
        limit = self.store.block_limit(version)
        # Refuse an oversized block before reading it: it may be a hundred megabytes.
        if length > limit:
            raise body_too_large(limit)
        append_position = _optional_int(headers, "x-ms-blob-condition-appendpos")
        max_size = _optional_int(headers, "x-ms-blob-condition-maxsize")
        data = await request.body()
        md5 = _check_md5(headers, data)
        result = self.store.append_block(
            *target, data, version=version, append_position=append_position,
            max_size=max_size, if_match=headers.get("if-match"),
            if_none_match=headers.get("if-none-match"),
        )
        props = result.properties
        return Response(status_code=201, headers={
            "ETag": props.etag,
            "Last-Modified": http_date(props.last_modified),
            "Content-MD5": md5,
            "x-ms-blob-append-offset": str(result.offset),
            "x-ms-blob-committed-block-count": str(props.committed_block_count),
            "x-ms-request-server-encrypted": "true",
        })

    def _read(
        self, request: Request, target: tuple[str, str, str], version: str,
        conditions: Conditions,
    ) -> Response:
        headers = request.headers
        if conditions != Conditions():
            current = self.store.properties(*target)
            try:
                conditions.check_read(current.etag, current.last_modified)
            except NotModified:
                return Response(status_code=304, headers={
                    "ETag": current.etag, "Last-Modified": http_date(current.last_modified),
                    "x-ms-error-code": "ConditionNotMet",
                })
        if request.method == "HEAD":
            props = self.store.properties(*target)
            response_headers = property_headers(props, version)
            response_headers["Content-Length"] = str(props.size)
            if props.content_md5 is not None:
                response_headers["Content-MD5"] = props.content_md5
            return Response(status_code=200, headers=response_headers)

        # x-ms-range wins over Range when both are sent.
        range_header = "x-ms-range" if "x-ms-range" in headers else "Range"
        range_value = headers.get(range_header)
        start: int | None = None
        end: int | None = None
        if range_value is not None:
            start, end = parse_range(range_value, range_header)
        range_md5 = headers.get("x-ms-range-get-content-md5", "").lower() == "true"
        if range_md5 and (start is None or end is None or end - start + 1 > _RANGE_MD5_LIMIT):
            raise invalid_header(
                "x-ms-range-get-content-md5", "true",
                "A range's MD5 is served for a bounded range of at most 4 MiB.",
            )
        read = self.store.read(*target, start, end)
        props = read.properties
        response_headers = property_headers(props, version)
        response_headers["Content-Length"] = str(len(read.data))
        if read.ranged:
            response_headers["Content-Range"] = f"bytes {read.first}-{read.last}/{props.size}"
            if range_md5:
                response_headers["Content-MD5"] = _md5(read.data)
            if props.content_md5 is not None:
                # The whole blob's MD5, which Content-MD5 cannot carry on a ranged read.
                response_headers["x-ms-blob-content-md5"] = props.content_md5
        elif props.content_md5 is not None:
            response_headers["Content-MD5"] = props.content_md5
        return Response(read.data, status_code=206 if read.ranged else 200,
                        headers=response_headers)

    def _error(self, error: StorageError, request_id: str, *, head: bool) -> Response:
        return storage_error_response(error, request_id, self.store.now(), head=head)


def storage_error_response(
    error: StorageError, request_id: str, now: datetime, *, head: bool
) -> Response:
    """Azure Storage's error answer: XML body (none for HEAD) and ``x-ms-error-code``."""
    headers = {"x-ms-error-code": error.code, **error.headers}
    if head:
        return Response(status_code=error.status, headers=headers)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond:06d}0Z"
    extra = "".join(
        f"<{name}>{escape(value)}</{name}>" for name, value in error.details.items()
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{escape(error.code)}</Code>"
        f"<Message>{escape(error.message)}\nRequestId:{request_id}\nTime:{stamp}</Message>"
        f"{extra}</Error>"
    )
    return Response(body.encode("utf-8"), status_code=error.status, headers=headers,
                    media_type="application/xml")


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _check_md5(headers: Headers, data: bytes) -> str:
    """The body's MD5; 400 ``Md5Mismatch`` when the client's ``Content-MD5`` differs."""
    md5 = _md5(data)
    claimed = headers.get("content-md5")
    if claimed is not None and claimed != md5:
        raise StorageError(
            400, "Md5Mismatch",
            "The MD5 value specified in the request did not match with the MD5 value "
            "calculated by the server.",
            details={"UserSpecifiedMd5": claimed, "ServerCalculatedMd5": md5},
        )
    return md5


def _length_required() -> StorageError:
    return StorageError(
        411, "MissingContentLengthHeader", "The Content-Length header was not specified."
    )


def _int_header(name: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise invalid_header(name, value) from None
    if number < 0:
        raise invalid_header(name, value)
    return number


def _optional_int(headers: Headers, name: str) -> int | None:
    value = headers.get(name)
    return None if value is None else _int_header(name, value)


async def _drain(request: Request) -> None:
    """Read and drop an unread request body so a keep-alive connection stays usable."""
    try:
        async for _ in request.stream():
            pass
    except (ClientDisconnect, RuntimeError):
        # Already consumed, or the client went away: nothing to keep usable.
        pass
