"""The api-versions the sandbox accepts, per surface, as the real services offer them.

ARM refuses any other value with 400 ``InvalidApiVersionParameter``. Sources: section 1 of
``azure-run-command.md`` (the Compute and HybridCompute readmes and the stored specs).
"""

from __future__ import annotations

COMPUTE = (
    # Managed run commands first appear in stable 2020-06-01.
    "2020-06-01", "2020-12-01", "2021-03-01", "2021-04-01", "2021-07-01", "2021-11-01",
    "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01", "2023-09-01",
    "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-03-01",
    "2026-04-01",
)

ARC_RUN_COMMANDS = (
    "2023-10-03-preview", "2024-03-31-preview", "2024-05-20-preview", "2024-07-10",
    "2024-07-31-preview", "2024-09-10-preview", "2024-11-10-preview", "2025-01-13",
    "2025-02-19-preview", "2025-06-01", "2025-08-21-preview", "2025-09-16-preview",
    "2026-02-12-preview", "2026-06-04-preview", "2026-06-16-preview", "2026-07-15",
    "2026-09-01",
)
"""Stable 2024-07-10, 2025-01-13, 2026-07-15, 2026-09-01, and the previews the readme lists."""

ARC_MACHINES = (
    "2019-12-12", "2020-08-02", "2021-05-20", "2022-03-10", "2022-11-10", "2022-12-27",
    *ARC_RUN_COMMANDS,
)

ARC_PATCH = ("2024-07-10", "2025-01-13")
"""Run command PATCH exists in these stable versions only; 2026-09-01 removed it."""

RESOURCE_GRAPH = ("2019-04-01", "2021-03-01", "2022-10-01", "2024-04-01")

STORAGE = (
    "2021-09-01", "2022-09-01", "2023-01-01", "2023-05-01", "2024-01-01", "2025-01-01",
    "2025-06-01", "2025-08-01", "2026-04-01", "2026-06-01", "2026-09-01",
)
"""Microsoft.Storage: the stable versions azure-storage-and-scale-sets.md 1.1 lists (2025-01-01
and newer) and older stable ones that carry the same container and list operations."""

AUTHORIZATION = ("2015-07-01", "2018-01-01-preview", "2022-04-01")
"""Microsoft.Authorization permissions reads (``.../providers/Microsoft.Authorization/
permissions``); fleetrun asks 2022-04-01."""
