"""One ASGI app for the whole sandbox: ARM paths to the ARM half, the rest to blob storage.

ARM paths begin with ``/subscriptions`` or ``/providers``; blob URLs are path style like
Azurite's, ``/<account>/<container>/<blob>``, and no storage account can be named
``subscriptions`` or ``providers`` here. Both halves answer only requests whose ``Host``
names the sandbox itself (``core.sandbox.access``); the ARM half also wants its token.
"""

from __future__ import annotations

import uuid

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from core.sandbox.access import Access
from core.sandbox.arm_app import ArmApp
from core.sandbox.blob_auth import BlobAuth
from core.sandbox.blob_routes import create_blob_app, storage_error_response
from core.sandbox.blobstore import StorageError
from core.sandbox.service import SandboxService

_ARM_ROOTS = {"subscriptions", "providers"}
HOST_REFUSED = "InvalidHostName"


class SandboxApp:
    """The sandbox's HTTP face.

    Args:
        service: The sandbox state to serve.
        access: The token ARM callers must present and the ``Host`` values accepted.
    """

    def __init__(self, service: SandboxService, access: Access) -> None:
        self.service = service
        self.access = access
        self.arm = ArmApp(service, access)
        blob_auth = BlobAuth(service.blobs, access, tenant=service.fleet.tenant)
        service.sinks.check_sas_with(
            lambda address, operation: blob_auth.check_sas(
                (address.account, address.container, address.blob), address.query, operation,
                https=address.https))
        self.blob: ASGIApp = create_blob_app(service.blobs, blob_auth)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        first = scope["path"].lstrip("/").split("/", 1)[0].lower()
        arm = first in _ARM_ROOTS
        host = _host(scope)
        if not self.access.accepts_host(host):
            refusal = self._refuse_host(host, arm=arm, head=scope["method"] == "HEAD")
            await refusal(scope, receive, send)
        elif arm:
            await self.arm(scope, receive, send)
        else:
            await self.blob(scope, receive, send)

    def _refuse_host(self, host: str | None, *, arm: bool, head: bool) -> Response:
        message = self.access.host_refusal(host)
        request_id = str(uuid.uuid4())
        if arm:
            return JSONResponse({"error": {"code": HOST_REFUSED, "message": message}},
                                status_code=400, headers={"x-ms-request-id": request_id})
        response = storage_error_response(StorageError(400, HOST_REFUSED, message),
                                          request_id, self.service.blobs.now(), head=head)
        response.headers["x-ms-request-id"] = request_id
        return response


def _host(scope: Scope) -> str | None:
    """The one ``Host`` value; None when there is none, or more than one to choose from."""
    values = [value for name, value in scope["headers"] if name.lower() == b"host"]
    if len(values) != 1:
        return None
    text: str = values[0].decode("latin-1")
    return text
