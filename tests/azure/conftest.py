"""Clients for the blob tests: a real httpx stack behind a transport that can inject faults.

The blob endpoints themselves (``blob_target`` and friends) come from ``tests/blob_targets.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from core.azure.blob import AppendBlobClient, BlobRetry
from tests.azure.faulty import FaultyTransport

FAST_RETRY = BlobRetry(attempts=4, base_delay=0.001, max_delay=0.01)
"""Real backoff, scaled down so the tests stay fast."""


@pytest.fixture
async def wire() -> AsyncIterator[FaultyTransport]:
    transport = FaultyTransport()
    yield transport
    await transport.aclose()


@pytest.fixture
async def blobs(wire: FaultyTransport) -> AsyncIterator[AppendBlobClient]:
    async with httpx.AsyncClient(transport=wire, timeout=10) as http:
        yield AppendBlobClient(http, retry=FAST_RETRY)
