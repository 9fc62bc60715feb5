"""Azure Resource Graph's ``POST /providers/Microsoft.ResourceGraph/resources`` in the sandbox.

``execute_query`` takes a parsed ``QueryRequest`` body and the sandbox's resources (ARG-shaped
``Resources`` rows) and returns a ``QueryResponse``, or raises ``GraphQueryError`` whose ``body``
is ARG's ``ErrorResponse`` for an HTTP 400. It does no I/O. The query language is in
``graph_kql``.

What the sandbox does with each part of the request:

- ``query``: required; run with the KQL subset ``graph_kql`` documents.
- ``subscriptions``: keeps rows whose ``subscriptionId`` is listed (case-insensitive). Omitted or
  empty means every subscription the sandbox has, as a tenant-scope query.
- ``managementGroups``: checked to be a list of strings, then ignored: the sandbox has no
  management-group hierarchy, so a management-group query sees every subscription.
- ``options``: ``$top`` (1..1000, default 100), ``$skip`` (>= 0), ``$skipToken``, ``resultFormat``
  (``objectArray`` default, or ``table``), ``allowPartialScopes`` and
  ``authorizationScopeFilter`` (checked, no effect). Option names it does not know are ignored,
  as ARM ignores unknown JSON members; known options with bad values are a 400.
- ``facets``: checked to be a list; the response's ``facets`` is always ``[]``.

Paging: ``$skipToken`` is base64url JSON carrying the next offset, the page size and a digest of
the query and scope, so a token replayed with another query or scope is refused. ``$top`` and
``$skip`` sent with a token override its page size and offset. A query whose output has no
``id`` column cannot be paged: more rows than one page gives ``resultTruncated: "true"`` and no
``$skipToken``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from core.sandbox.graph_kql import KqlError, compile_query

DEFAULT_TOP = 100
MAX_TOP = 1000
_INT32_MAX = 2**31 - 1
_FORMATS = ("objectArray", "table")
_SCOPE_FILTERS = ("AtScopeAndBelow", "AtScopeAndAbove", "AtScopeExact", "AtScopeAboveAndBelow")


class GraphQueryError(Exception):
    """A request ARG would answer with 400; ``body`` is the ``ErrorResponse`` to send.

    Attributes:
        field: The request field at fault (``query``, ``options.$top``, ``subscriptions``, ...).
        code: The precise error code (``ParserFailure``, ``UnknownFunction``, ...).
        message: What is wrong and what is allowed, prefixed with ``field``.
    """

    status_code = 400

    def __init__(self, field: str, code: str, message: str) -> None:
        self.field, self.code, self.message = field, code, f"{field}: {message}"
        super().__init__(self.message)

    @property
    def body(self) -> dict[str, Any]:
        """ARG's error shape: ``BadRequest`` with a general then a precise detail.

        The top-level message repeats the precise one (real ARG puts a support blurb there) so
        that a client logging only ``error.message`` still shows the cause.
        """
        if self.field == "query":
            general = {"code": "InvalidQuery", "message": "Query is invalid. Please refer to the "
                       "documentation for the Azure Resource Graph service and fix the error "
                       "before retrying."}
        else:
            general = {"code": "InvalidRequestContent",
                       "message": "The request content is invalid and cannot be processed."}
        detail = {"code": self.code, "message": self.message}
        return {"error": {"code": "BadRequest", "message": self.message,
                          "details": [general, detail]}}


def execute_query(
    request: Mapping[str, Any], resources: Sequence[Mapping[str, Any]],
    compute_resources: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Runs one Resource Graph request against ``resources``.

    Args:
        request: The parsed JSON body (``QueryRequest``).
        resources: Every resource the sandbox has, as ``Resources`` table rows.
        compute_resources: The ``ComputeResources`` table's rows (Uniform scale set
            instances), for a query that starts with that table.

    Returns:
        The ``QueryResponse``: ``totalRecords``, ``count``, ``resultTruncated`` ("true"/"false"),
        ``$skipToken`` when more rows remain, ``data`` and ``facets``.

    Raises:
        GraphQueryError: The request or its query is invalid or outside the sandbox's subset.
    """
    if not isinstance(request, Mapping):
        raise GraphQueryError("body", "InvalidRequestContent",
                              "the request body must be a JSON object (QueryRequest)")
    query = request.get("query")
    if not isinstance(query, str) or not query.strip():
        raise GraphQueryError("query", "MissingQuery",
                              "is required and must be a non-empty KQL string, e.g. "
                              "\"Resources | project id, name\"")
    subscriptions = _strings(request, "subscriptions")
    management_groups = _strings(request, "managementGroups")
    if not isinstance(request.get("facets", []), list):
        raise GraphQueryError("facets", "InvalidRequestContent", "must be a list of FacetRequest")
    options = request.get("options")
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise GraphQueryError("options", "InvalidRequestContent",
                              "must be an object (QueryRequestOptions)")
    result_format = _choice(options, "resultFormat", _FORMATS) or "objectArray"
    _choice(options, "authorizationScopeFilter", _SCOPE_FILTERS)
    if not isinstance(options.get("allowPartialScopes", False), bool):
        raise GraphQueryError("options.allowPartialScopes", "InvalidRequestContent",
                              "must be true or false")
    top = _integer(options, "$top", 1, MAX_TOP)
    skip = _integer(options, "$skip", 0, _INT32_MAX)

    digest = hashlib.sha256(json.dumps(
        [query, sorted(s.lower() for s in subscriptions or []),
         sorted(g.lower() for g in management_groups or [])]).encode()).hexdigest()[:16]
    offset, size = skip or 0, top or DEFAULT_TOP
    if options.get("$skipToken") is not None:
        token_offset, token_size = _read_token(options["$skipToken"], digest)
        offset = token_offset if skip is None else skip
        size = token_size if top is None else top

    try:
        compiled = compile_query(query)
    except KqlError as error:
        raise GraphQueryError("query", error.code, error.message) from None
    if subscriptions:
        wanted = {s.lower() for s in subscriptions}
        resources = [r for r in resources if str(r.get("subscriptionId", "")).lower() in wanted]
        compute_resources = [r for r in compute_resources
                             if str(r.get("subscriptionId", "")).lower() in wanted]
    rows = compiled.run(resources, compute_resources)

    # Deep copies: the response must not share dicts with the sandbox's own resources.
    page = copy.deepcopy(rows[offset:offset + size])
    more = offset + size < len(rows)
    pageable = "id" in compiled.columns
    response: dict[str, Any] = {
        "totalRecords": len(rows),
        "count": len(page),
        "resultTruncated": "true" if more and not pageable else "false",
    }
    if more and pageable:
        response["$skipToken"] = _make_token(offset + size, size, digest)
    if result_format == "table":
        names = list(compiled.columns)
        response["data"] = {
            "columns": [{"name": n, "type": t} for n, t in compiled.columns.items()],
            "rows": [[row.get(n) for n in names] for row in page],
        }
    else:
        response["data"] = page
    response["facets"] = []
    return response


def _strings(request: Mapping[str, Any], field: str) -> list[str] | None:
    value = request.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise GraphQueryError(field, "InvalidRequestContent",
                              f"must be a list of non-empty strings, got {json.dumps(value)}")
    return value


def _choice(options: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = options.get(name)
    if value is None:
        return None
    # ARM matches enum strings case-insensitively; return the canonical spelling.
    match = next((a for a in allowed if isinstance(value, str) and a.lower() == value.lower()),
                 None)
    if match is None:
        raise GraphQueryError(f"options.{name}", "InvalidRequestContent",
                              f"must be one of {', '.join(allowed)}, got {json.dumps(value)}")
    return match


def _integer(options: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        what = "the page size, default 100" if name == "$top" else "rows to skip"
        raise GraphQueryError(f"options.{name}", "InvalidRequestContent",
                              f"must be an integer from {low} to {high} ({what}), "
                              f"got {json.dumps(value)}")
    return value


def _make_token(offset: int, size: int, digest: str) -> str:
    raw = json.dumps({"o": offset, "t": size, "h": digest}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_token(token: Any, digest: str) -> tuple[int, int]:
    field = "options.$skipToken"
    fields: tuple[Any, Any, Any] | None = None
    if isinstance(token, str):
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            fields = (data["o"], data["t"], data["h"])
        except (binascii.Error, ValueError, TypeError, KeyError):
            pass  # not ours; reported below
    if fields is None or type(fields[0]) is not int or type(fields[1]) is not int \
            or fields[0] < 0 or not 1 <= fields[1] <= MAX_TOP:
        raise GraphQueryError(field, "InvalidSkipToken",
                              "is not a continuation token this sandbox issued; send the "
                              "$skipToken of the previous response unchanged")
    if fields[2] != digest:
        raise GraphQueryError(field, "InvalidSkipToken",
                              "was issued for a different query or scope (subscriptions, "
                              "managementGroups); send the same query and scope as the request "
                              "that returned it, or drop $skipToken to start from the first page")
    return fields[0], fields[1]
