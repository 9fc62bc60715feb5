"""Blob URLs: one blob's URL from a container SAS URL, and SAS signatures kept off screens.

fleetrun is configured with one container SAS URL and derives each machine's
``outputBlobUri``/``errorBlobUri`` from it with :func:`blob_url`. Any URL or message that
may be shown or logged goes through :func:`redact_sas` first.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

_SIG = re.compile(r"(?i)\bsig=[^&#\s\"'<>]*")
MAX_BLOB_NAME = 1024


def redact_sas(text: str) -> str:
    """``text`` (a URL, or a message that may quote one) with every ``sig=`` value redacted."""
    return _SIG.sub("sig=REDACTED", text)


def blob_url(container_url: str, blob_name: str) -> str:
    """The URL of one blob in a container, carrying the container URL's query (its SAS).

    Args:
        container_url: ``https://<account>.blob.core.windows.net/<container>?<SAS>``, or
            path style ``http://127.0.0.1:<port>/<account>/<container>?<SAS>``.
        blob_name: The blob's name; may contain ``/``. Characters a URL path cannot hold
            as they are get percent-encoded.

    Raises:
        ValueError: The container URL is not an http(s) URL with a container in its path,
            its SAS is for a single blob (``sr=b``), or the blob name is empty, longer than
            1,024 characters, or starts with ``/``. The message never shows the signature.
    """
    shown = redact_sas(container_url)
    parts = urlsplit(container_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"container URL {shown!r}: expected an http:// or https:// URL")
    if not parts.path.strip("/"):
        raise ValueError(f"container URL {shown!r}: the path names no container")
    if parts.fragment:
        raise ValueError(f"container URL {shown!r}: a '#' fragment is not allowed")
    resource = dict(parse_qsl(parts.query)).get("sr", "")
    if resource.startswith("b"):
        raise ValueError(
            f"container URL {shown!r}: its SAS is for one blob (sr={resource}); "
            "a container SAS (sr=c) is needed to name other blobs"
        )
    if not blob_name or len(blob_name) > MAX_BLOB_NAME:
        raise ValueError(f"blob name {blob_name!r}: expected 1 to 1,024 characters")
    if blob_name.startswith("/"):
        raise ValueError(f"blob name {blob_name!r}: must not start with '/'")
    path = parts.path.rstrip("/") + "/" + quote(blob_name, safe="/")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def with_query(url: str, extra: str) -> str:
    """``url`` with ``extra`` (``name=value``) put first in its query."""
    parts = urlsplit(url)
    query = f"{extra}&{parts.query}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def blob_key(url: str) -> str:
    """Host and path: the same blob whichever SAS a URL carries."""
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"
