"""Output storage in ``output_mode = "user-delegation"``: one key per run, one SAS per blob.

Each run asks Storage once for a user-delegation key (the user's Entra token for
``https://storage.azure.com/``), starting a few minutes back (clocks differ) and expiring
with the run's timeout plus a margin, at most 7 days ahead. Each machine and stream then
gets its own blob-scoped writer SAS (``racw``, what Compute asks of ``outputBlobUri``), and
an uploaded script a read-only one (``r``). fleetrun itself reads the blobs with the user's
token, never with a SAS, so no SAS it signs is ever needed again after the PUT.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from core.azure.user_delegation import (
    MAX_KEY_LIFETIME,
    READER_PERMISSIONS,
    WRITER_PERMISSIONS,
    Bearer,
    ContainerAddress,
    UserDelegationKey,
    blob_sas,
    get_user_delegation_key,
)

KEY_START_BACK = timedelta(minutes=5)
"""How far back a key (and its SAS) starts: a machine's clock may be behind ours."""
EXPIRY_MARGIN = timedelta(hours=1)
"""Beyond the run's timeout: the agent's last flush, a late start, the client's drain."""
LIFETIME_SLACK = timedelta(minutes=1)
"""Kept off the 7-day cap, so a request that takes a while is still within it."""


class DelegatedOutput:
    """Signs the blob URLs of each run with that run's user-delegation key.

    Args:
        http: The client for Storage (the caller owns it).
        container_url: The plain container URL (no SAS).
        bearer: The user's Entra token for Storage.
        clock: The current time (tests move it).
    """

    def __init__(self, http: httpx.AsyncClient, container_url: str, bearer: Bearer, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.address = ContainerAddress.of(container_url)
        self._http = http
        self._bearer = bearer
        self._clock = clock
        self._keys: dict[str, asyncio.Future[UserDelegationKey]] = {}
        self.keys_fetched = 0
        """How many keys were asked for (one per run)."""

    def lifetime(self, timeout: int) -> tuple[datetime, datetime]:
        """The start and expiry of a run's key for a command timeout in seconds (0: none)."""
        now = self._clock()
        longest = now + MAX_KEY_LIFETIME - LIFETIME_SLACK
        expiry = longest if timeout <= 0 else min(
            longest, now + timedelta(seconds=timeout) + EXPIRY_MARGIN)
        return now - KEY_START_BACK, expiry

    async def prepare(self, run_id: str, timeout_seconds: int) -> UserDelegationKey:
        """The run's key: fetched by the first machine that asks, shared by the rest.

        Raises:
            BlobError: Storage refused (a 403 names the missing action) or was unreachable.
        """
        future = self._keys.get(run_id)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._keys[run_id] = future
            start, expiry = self.lifetime(timeout_seconds)
            self.keys_fetched += 1
            try:
                future.set_result(await get_user_delegation_key(
                    self._http, self.address.service_url, self._bearer,
                    start=start, expiry=expiry))
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: the callers raise their own copy below
                raise
        return await asyncio.shield(future)

    def url(self, run_id: str, blob_name: str, *, write: bool) -> str:
        """A blob's URL with its own SAS: ``racw`` to write, ``r`` to read.

        Raises:
            KeyError: :meth:`prepare` did not get the run's key first.
        """
        future = self._keys[run_id]
        key = future.result()
        permission = WRITER_PERMISSIONS if write else READER_PERMISSIONS
        # No st: valid at once, as far as the key (which starts KEY_START_BACK ago) allows.
        sas = blob_sas(key, self.address, blob_name, permission=permission,
                       expiry=key.expires)
        return f"{self.address.blob_url(blob_name)}?{sas}"

    def plain_url(self, blob_name: str) -> str:
        """A blob's URL without a SAS, for reading with the user's token."""
        return self.address.blob_url(blob_name)
