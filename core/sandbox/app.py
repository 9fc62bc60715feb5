"""One ASGI app for the whole sandbox: ARM paths to the ARM half, the rest to blob storage.

ARM paths begin with ``/subscriptions`` or ``/providers``; blob URLs are path style like
Azurite's, ``/<account>/<container>/<blob>``, and no storage account can be named
``subscriptions`` or ``providers`` here.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from core.sandbox.arm_app import ArmApp
from core.sandbox.blob_routes import create_blob_app
from core.sandbox.service import SandboxService

_ARM_ROOTS = {"subscriptions", "providers"}


class SandboxApp:
    def __init__(self, service: SandboxService) -> None:
        self.service = service
        self.arm = ArmApp(service)
        self.blob: ASGIApp = create_blob_app(service.blobs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        first = scope["path"].lstrip("/").split("/", 1)[0].lower()
        if first in _ARM_ROOTS:
            await self.arm(scope, receive, send)
        else:
            await self.blob(scope, receive, send)
