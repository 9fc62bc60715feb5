"""ARM's error envelope, raised anywhere in the ARM half of the sandbox."""

from __future__ import annotations

from typing import Any


class ArmError(Exception):
    """An ARM error answer: HTTP status plus the ``CloudError`` body's code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ProviderThrottled(ArmError):
    """Compute's own 429 (reference 7.3): the ``OperationNotAllowed`` body at the top level,
    not in ARM's ``{"error": ...}`` envelope, with a ``details[]`` entry per spent window."""

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details or []}
