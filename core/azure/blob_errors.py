"""What the blob service says when it refuses, and what the client says when it cannot ask.

Error answers carry the code in ``x-ms-error-code`` and, except for HEAD, an XML body
``<Error><Code>..</Code><Message>..</Message></Error>`` (reference section 8.5).
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import httpx

from core.azure.blob_urls import redact_sas
from core.errors import ServiceError

_XML_LIMIT = 65536
"""Error bodies are small; a longer one is not parsed (its code still comes from the header)."""


class BlobError(ServiceError):
    """The blob service refused a request, answered nonsense, or could not be reached.

    Attributes:
        status: The HTTP status; 0 when no answer arrived (connection failures, timeouts).
        code: The service's error code (``x-ms-error-code`` or the XML ``<Code>``), or for
            failures without one a name for what went wrong (``ConnectError``,
            ``InvalidResponse``).
        message: What the service or the failure said, SAS signature redacted.
        request: Method and URL of the request, SAS signature redacted.
        request_id: ``x-ms-request-id`` of the answer, for a support ticket ("" if none).
    """

    service = "azure"

    def __init__(self, status: int, code: str, message: str, *, method: str = "",
                 url: str = "", request_id: str = "") -> None:
        self.status = status
        self.code = code
        self.message = redact_sas(message)
        self.request = redact_sas(f"{method} {url}".strip())
        self.request_id = request_id
        super().__init__(status, code, self.message)

    def __str__(self) -> str:
        where = f" ({self.request})" if self.request else ""
        status = f"{self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}{where}"


def error_code(response: httpx.Response) -> str:
    """The service's error code, or "" when the answer has none."""
    code = str(response.headers.get("x-ms-error-code", ""))
    return code or _xml_field(response, "Code") or ""


def error_from(response: httpx.Response) -> BlobError:
    """A refusal as an exception, with the first line of the service's message."""
    message = (_xml_field(response, "Message") or "").strip()
    # The service appends "RequestId:..." and "Time:..." lines; the first line says it all.
    text = message.splitlines()[0] if message else response.reason_phrase or "no message"
    request = response.request
    return BlobError(response.status_code, error_code(response) or f"HTTP{response.status_code}",
                     text, method=request.method, url=str(request.url),
                     request_id=str(response.headers.get("x-ms-request-id", "")))


def transport_error(exc: Exception, method: str, url: str) -> BlobError:
    """No answer arrived (after the retries, where retrying made sense)."""
    detail = str(exc) or "no detail"
    return BlobError(0, type(exc).__name__, f"no answer from the blob service: {detail}",
                     method=method, url=url)


def invalid_response(response: httpx.Response, header: str, expected: str) -> BlobError:
    """An answer whose ``header`` does not say what it must."""
    value = response.headers.get(header)
    shown = "missing" if value is None else repr(value[:100])
    return BlobError(response.status_code, "InvalidResponse",
                     f"header {header} is {shown}; expected {expected}",
                     method=response.request.method, url=str(response.request.url))


def _xml_field(response: httpx.Response, name: str) -> str | None:
    body = response.content
    if not body or len(body) > _XML_LIMIT:
        return None
    if "xml" not in str(response.headers.get("Content-Type", "xml")):
        return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    return root.findtext(name)
