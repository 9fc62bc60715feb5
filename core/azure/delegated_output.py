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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx

from core.azure.blob_errors import error_from, transport_error
from core.azure.http import parsed_url, send
from core.azure.user_delegation import (
    MAX_KEY_LIFETIME,
    READER_PERMISSIONS,
    SAS_VERSION,
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
T = TypeVar("T")
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
        self._uploads: dict[str, asyncio.Future[None]] = {}
        self.keys_fetched = 0
        """How many keys were asked for (one per run)."""
        self.uploads = 0
        """How many blobs were uploaded (one per run and script)."""

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
        start, expiry = self.lifetime(timeout_seconds)

        async def fetch() -> UserDelegationKey:
            self.keys_fetched += 1
            return await get_user_delegation_key(
                self._http, self.address.service_url, self._bearer, start=start, expiry=expiry)

        return await _once(self._keys, run_id, fetch)

    async def upload(self, blob_name: str, data: bytes, content_type: str) -> None:
        """Put Blob (a block blob, with the user's token), once per name however many
        machines ask; the others wait for the first (storage reference section 4).

        Raises:
            BlobError: Storage refused (403: the user lacks Storage Blob Data Contributor)
                or could not be reached.
        """
        url = self.address.blob_url(blob_name)

        async def put() -> None:
            headers = {"x-ms-version": SAS_VERSION, "x-ms-blob-type": "BlockBlob",
                       "Content-Type": content_type,
                       "Authorization": f"Bearer {await self._bearer()}"}
            try:
                response = await send(self._http, "PUT", parsed_url(url), headers, content=data)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise transport_error(exc, "PUT", url) from None
            if response.status_code != 201:
                raise error_from(response)
            self.uploads += 1

        await _once(self._uploads, blob_name, put)

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


async def _once(started: dict[str, asyncio.Future[T]], name: str,
                   make: Callable[[], Awaitable[T]]) -> T:
    """``make()``'s result, made by the first caller for ``name``; later callers share it
    (its failure too: every machine of the run then says the same)."""
    future = started.get(name)
    if future is None:
        future = asyncio.get_running_loop().create_future()
        started[name] = future
        try:
            future.set_result(await make())
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: each caller raises it below
            raise
    return await asyncio.shield(future)
