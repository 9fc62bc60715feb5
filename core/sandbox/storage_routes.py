"""HTTP answers of Microsoft.Storage's ARM operations (``StorageAccounts_List``,
``StorageAccounts_ListByResourceGroup``, ``BlobContainers_Create/Get/Delete``).

The behaviour is ``storage_arm.StorageArm``'s; this module turns requests into its calls and
its results into ARM answers: pages of 20 accounts with ``nextLink`` (an opaque
``$skiptoken``), blob endpoints built from the address the caller used.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from core.sandbox.errors import ArmError
from core.sandbox.storage_arm import ACCOUNTS_PER_PAGE, StorageArm


def account_list(request: Request, storage: StorageArm, params: dict[str, str]) -> Response:
    accounts = storage.listed(params["sub"], params.get("rg"))
    start = _skip(request.query_params.get("$skiptoken"))
    page = accounts[start:start + ACCOUNTS_PER_PAGE]
    base = f"{request.url.scheme}://{request.url.netloc}"
    body: dict[str, Any] = {
        "value": [storage.account_json(spec, f"{base}/{spec.name}/") for spec in page]}
    following = start + ACCOUNTS_PER_PAGE
    if following < len(accounts):
        token = base64.urlsafe_b64encode(f"skip:{following}".encode()).decode("ascii")
        version = request.query_params["api-version"]
        body["nextLink"] = (f"{base}{request.url.path}?api-version={version}"
                            f"&$skiptoken={token}")
    return JSONResponse(body)


async def container(
    request: Request, storage: StorageArm, params: dict[str, str], body: Any
) -> Response:
    spec = storage.account(params["sub"], params["rg"], params["account"])
    name = params["container"]
    if request.method == "GET":
        return JSONResponse(storage.get_container(spec, name))
    if request.method == "DELETE":
        return Response(status_code=200 if storage.delete_container(spec, name) else 204)
    created, answer = storage.put_container(spec, name, body)
    return JSONResponse(answer, status_code=201 if created else 200)


def _skip(token: str | None) -> int:
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("ascii")
        kind, _, number = text.partition(":")
        if kind != "skip":
            raise ValueError(kind)
        return max(0, int(number))
    except (binascii.Error, UnicodeError, ValueError):
        raise ArmError(400, "InvalidSkipToken",
                       "The $skiptoken is not valid; use the nextLink of the previous page as "
                       "it is.") from None
