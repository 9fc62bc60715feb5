"""Which ARM endpoint and api-versions a session uses: settings read them without the
HTTP client (:mod:`core.azure.arm`, which imports httpx), so a run on SSH hosts never
loads it."""

from __future__ import annotations

import re
from dataclasses import dataclass

PUBLIC_CLOUD = "https://management.azure.com"
_PROVIDER = re.compile(r"/providers/([^/?#]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ApiVersions:
    """The api-version sent to each resource provider (reference section 1)."""

    compute: str = "2025-04-01"
    hybridcompute: str = "2025-01-13"
    resourcegraph: str = "2024-04-01"

    def for_path(self, path: str) -> str | None:
        """The version for the last provider named in ``path``; None when none is named."""
        found = _PROVIDER.findall(path)
        if not found:
            return None
        provider = found[-1].lower()
        return {
            "microsoft.compute": self.compute,
            "microsoft.hybridcompute": self.hybridcompute,
            "microsoft.resourcegraph": self.resourcegraph,
        }.get(provider)
