"""An async ARM client: api-versions, bearer tokens, retries, the throttle budget, and LROs.

Every request goes through :meth:`ArmClient.request`, which

- adds the provider's ``api-version`` (configurable per provider) to relative paths;
- takes a token from its throttle scope's :class:`~core.azure.budget.ArmBudget` queue
  before sending (queued by the call's :class:`~core.azure.budget.Priority`), and settles it
  with the answer's ``x-ms-ratelimit-remaining-*`` headers, which drive the counts;
- waits out a 429's ``Retry-After`` (the budget blocks only the scope or Compute operation
  group it names) and sends again, with a fresh token (the service did nothing with it);
- retries idempotent calls on 5xx and dropped connections with jittered exponential backoff;
- turns any other non-2xx answer into an :class:`ArmError` naming ARM's code and message.

:meth:`ArmClient.wait` follows a long-running operation (``Azure-AsyncOperation`` first,
then ``Location``) to its end.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from core.azure.api_versions import ApiVersions
from core.azure.auth import ARM_SCOPE, TokenSource, principal_of
from core.azure.blob_urls import redact_sas
from core.azure.budget import ArmBudget, Priority, ThrottleScope, Ticket, kind_of
from core.azure.http import parsed_url, pooled_client, send
from core.azure.request_waits import RequestWaits, WaitReport
from core.errors import ServiceError

log = logging.getLogger(__name__)

_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)
_ROUTING = re.compile(r"^([A-Za-z][A-Za-z0-9]{1,39}):\d{8}T\d{6}Z:[^:]+$")
_PROVIDER_TAIL = re.compile(r".*/providers/([^/?#]+)((?:/[^/?#]+)*)", re.IGNORECASE)
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
TERMINAL_OPERATION = frozenset({"succeeded", "failed", "canceled", "cancelled"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    """Tries of an idempotent call that meets 5xx answers or dropped connections."""
    backoff: float = 0.5
    """First backoff in seconds; doubled per try, with full jitter."""
    backoff_cap: float = 16.0
    throttle_attempts: int = 20
    """Tries of a call answered 429 before giving up (each waits ``Retry-After``)."""
    lro_poll_floor: float = 0.5
    lro_poll_cap: float = 15.0


class ArmError(ServiceError):
    """A non-2xx answer (or a call that could not be made) in ARM's terms.

    Attributes:
        status: The HTTP status (0 when no answer came).
        code: ARM's error code (``ResourceNotFound``, ``Conflict``, ...).
        message: ARM's message.
        request_id: ``x-ms-request-id``, for a support ticket.
        target: Method and path of the call.
    """

    service = "azure"

    def __init__(
        self, status: int, code: str, message: str, *, request_id: str = "", target: str = ""
    ) -> None:
        self.status = status
        self.code = code
        # ARM may quote a request's blob URL back (outputBlobUri, scriptUri): never its SAS.
        self.message = redact_sas(message)
        self.request_id = request_id
        self.target = target
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" ({self.target})" if self.target else ""
        status = f"{self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}{where}"


def subscription_of(path: str) -> str:
    """The subscription id in an ARM path or URL ('' when there is none)."""
    found = _SUBSCRIPTION.search(path)
    return found.group(1) if found else ""


def region_of(headers: Mapping[str, str]) -> str:
    """The ARM region that served an answer, from ``x-ms-routing-request-id``
    (``WESTEUROPE:20240409T093223Z:<guid>``); '' when absent or of another shape."""
    found = _ROUTING.match(headers.get("x-ms-routing-request-id", "").strip())
    return found.group(1).lower() if found else ""


def lane_of(path: str) -> str:
    """The provider and resource type a path names (``microsoft.compute/runcommands``):
    Compute counts its limits per operation group, which follow the kind of resource."""
    found = _PROVIDER_TAIL.search(urlsplit(path).path)
    if found is None:
        return ""
    types = found.group(2).strip("/").split("/")[0::2]
    return f"{found.group(1).lower()}/{types[-1].lower() if types[0] else ''}"


def retry_after(headers: Mapping[str, str], default: float) -> float:
    """``Retry-After`` in seconds (delta or HTTP date); ``default`` when absent or unreadable."""
    value = headers.get("retry-after")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def error_of(response: httpx.Response, target: str) -> ArmError:
    """The ArmError an answer carries, whatever shape its body has."""
    request_id = response.headers.get("x-ms-request-id", "")
    code, message = f"Http{response.status_code}", response.reason_phrase or "error"
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict):
            code = str(inner.get("code") or code)
            message = str(inner.get("message") or message)
    elif response.text.strip():
        message = response.text.strip()[:300]
    return ArmError(response.status_code, code, message, request_id=request_id, target=target)


class ArmClient:
    """Talks to Azure Resource Manager (or the sandbox, which speaks the same API).

    Args:
        base_url: ``https://management.azure.com``, or the sandbox's loopback URL.
        credential: Where bearer tokens come from.
        api_versions: Per-provider api-versions.
        budget: The throttle budget; one per client when None.
        retry: Retry and long-running-operation pacing.
        http: An httpx client to use (owned by the caller); one is made when None.
        verify: TLS verification for the client made here (a CA bundle path for a
            self-signed sandbox).
        principal: Who the token is for, and region: the ARM region that serves this
            client: with the subscription, ARM's throttle scope. When not given, the
            principal is read from the first token (its ``oid``, ``appid`` or ``sub``
            claim; '' for an opaque token) and the region from the first answer's
            ``x-ms-routing-request-id``; while either is unknown the scope is the
            subscription's alone.
    """

    def __init__(
        self,
        base_url: str,
        credential: TokenSource,
        *,
        api_versions: ApiVersions | None = None,
        budget: ArmBudget | None = None,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
        verify: bool | str = True,
        principal: str = "",
        region: str = "",
    ) -> None:
        self.principal, self.region = principal.lower(), region.lower()
        self._principal_known = bool(principal)
        self._region_known = bool(region)
        self._region_probe: asyncio.Future[None] | None = None
        """The first budgeted request's answer, which says the region, awaited by the rest
        (the budget lets one request go until then anyway)."""
        self.base_url = base_url.rstrip("/")
        self.credential = credential
        self.api_versions = api_versions or ApiVersions()
        self.budget = budget or ArmBudget()
        self.retry = retry or RetryPolicy()
        self._own_http = http is None
        self.http = http or pooled_client(verify=verify)
        self.sent: dict[str, int] = {"reads": 0, "writes": 0, "deletes": 0, "other": 0}
        """Requests that reached the service, by bucket (``other`` is not ARM-budgeted)."""
        self.waits = RequestWaits()
        """The requests whose callers follow their wait for a token (``waiting=``)."""

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        budgeted: bool = True,
        idempotent: bool | None = None,
        priority: Priority | None = None,
        waiting: WaitReport | None = None,
    ) -> httpx.Response:
        """Send one call and return its 2xx answer.

        Args:
            method: HTTP method.
            path: A path under the base URL (``/subscriptions/...``) or a full URL taken from
                a header (an operation status URL), used as given.
            params: Query parameters; ``api-version`` is added for relative paths.
            json_body: The JSON body, if any.
            budgeted: Whether the call spends the subscription's ARM budget (Resource Graph
                has its own quota and does not).
            idempotent: Whether a 5xx or dropped connection may be retried; by method when
                None.
            priority: The call's place in its scope's queue; when None, ``OPERATION`` for a
                full URL (an operation's status) and ``POLL`` otherwise.
            waiting: Told while a budgeted call waits for its token: Queued, Throttled
                while a 429 blocks its scope, None once it is sent
                (:mod:`core.azure.request_waits`).

        Raises:
            ArmError: A non-2xx answer, or no answer after the retries.
        """
        method = method.upper()
        query = dict(params or {})
        relative = not path.startswith(("http://", "https://"))
        if relative and "api-version" not in query:
            version = self.api_versions.for_path(path)
            if version is not None:
                query["api-version"] = version
        target = f"{method} {urlsplit(path).path}"
        host, ours = urlsplit(path).netloc.lower(), urlsplit(self.base_url).netloc.lower()
        if not relative and host != ours:
            # Operation URLs come from answer headers: the bearer token goes to ARM only.
            raise ArmError(0, "UntrustedUrl", f"refusing to send the ARM token to {host}, "
                           f"which is not {ours}", target=target)
        subscription = subscription_of(path)
        kind = kind_of(method)
        budgeted = budgeted and bool(subscription)
        if priority is None:
            priority = Priority.POLL if relative else Priority.OPERATION
        lane = f"{lane_of(path)} {method}"
        retryable = method in IDEMPOTENT if idempotent is None else idempotent
        failures = throttles = 0
        probing = False
        scope = ThrottleScope.of(subscription)
        while True:
            if budgeted:
                probing = probing or await self._identify()
                scope = ThrottleScope.of(subscription, self.principal, self.region)
            try:
                ticket = (await self._acquire(scope, kind, priority, lane, waiting)
                          if budgeted else None)
            except BaseException:
                if probing:
                    self._probe_ended(answered=False)
                raise
            try:
                token = await self.credential.token(ARM_SCOPE)
                headers = {"Authorization": f"Bearer {token}"}
                response = await send(self.http, method, parsed_url(self.url(path), query),
                                      headers, json=json_body)
            except httpx.TransportError as exc:
                if ticket is not None:
                    ticket.lost()
                if probing:
                    probing = self._probe_ended(answered=False)
                failures += 1
                if not retryable or failures >= self.retry.attempts:
                    raise ArmError(0, "ConnectionFailed", f"{type(exc).__name__}: {exc}"
                                   if str(exc) else type(exc).__name__, target=target) from None
                await asyncio.sleep(self._backoff(failures))
                continue
            except BaseException:
                if ticket is not None:
                    ticket.lost()
                if probing:
                    self._probe_ended(answered=False)
                raise
            self._learn_region(response.headers)
            self.sent[kind if budgeted else "other"] += 1
            status = response.status_code
            wait = retry_after(response.headers, 5.0) if status == 429 else 0.0
            if ticket is not None:
                ticket.answered(status, response.headers, wait,
                                _json_quietly(response) if status == 429 else None)
            if probing:
                # What the probe's answer taught its scope is the regional scope's now.
                self.budget.rename(scope, ThrottleScope.of(subscription, self.principal,
                                                           self.region))
                probing = self._probe_ended(answered=True)
            if status == 429:
                if budgeted:
                    self.waits.throttled(scope, kind, wait)
                throttles += 1
                log.info("%s throttled (429), retrying after %.1f s", target, wait)
                if throttles >= self.retry.throttle_attempts:
                    raise error_of(response, target)
                if not budgeted:
                    await asyncio.sleep(wait)
                continue
            if status in RETRYABLE_STATUS and retryable:
                failures += 1
                if failures < self.retry.attempts:
                    wait = max(retry_after(response.headers, 0.0), self._backoff(failures))
                    log.info("%s answered %d, retrying in %.1f s", target, status, wait)
                    await asyncio.sleep(wait)
                    continue
            if status >= 400:
                raise error_of(response, target)
            return response

    async def _acquire(self, scope: ThrottleScope, kind: str, priority: Priority, lane: str,
                       waiting: WaitReport | None) -> Ticket:
        if waiting is None:
            return await self.budget.acquire(scope, kind, priority, lane)
        self.waits.enter(scope, kind, waiting)
        try:
            return await self.budget.acquire(scope, kind, priority, lane)
        finally:
            self.waits.leave(scope, kind, waiting)

    async def _identify(self) -> bool:
        """Learn the principal (from the token) and the region (from the first answer) before
        a budgeted request picks its scope. True: this request is the one whose answer will
        say the region; the others wait for it."""
        if not self._principal_known:
            self.principal = principal_of(await self.credential.token(ARM_SCOPE))
            self._principal_known = True
        while not self._region_known:
            if self._region_probe is None:
                self._region_probe = asyncio.get_running_loop().create_future()
                return True
            await asyncio.shield(self._region_probe)
        return False

    def _probe_ended(self, *, answered: bool) -> bool:
        """The probing request got an answer (the region is as known as it will be) or none
        (the next request probes again); wakes the waiting requests."""
        probe, self._region_probe = self._region_probe, None
        self._region_known = self._region_known or answered
        if probe is not None and not probe.done():
            probe.set_result(None)
        return False

    def _learn_region(self, headers: Mapping[str, str]) -> None:
        if not self._region_known and (region := region_of(headers)):
            self.region, self._region_known = region, True

    def _backoff(self, failures: int) -> float:
        ceiling = min(self.retry.backoff_cap, self.retry.backoff * 2 ** (failures - 1))
        return random.uniform(self.retry.backoff / 2, ceiling)

    async def get(self, path: str, params: Mapping[str, str] | None = None,
                  priority: Priority | None = None) -> Any:
        """GET a resource and return its JSON body."""
        return _json(await self.request("GET", path, params=params, priority=priority),
                     f"GET {path}")

    async def wait(self, response: httpx.Response, *, within: float | None = None) -> Any:
        """Follow the long-running operation an answer started, to its end.

        Returns the final JSON body (the operation status, or the resource for a
        ``Location`` that answers with one; None for an empty 200/204).

        Raises:
            ArmError: The operation failed or was canceled, or did not end ``within`` seconds.
        """
        status_url = response.headers.get("azure-asyncoperation")
        location = response.headers.get("location")
        if response.status_code not in (201, 202) or not (status_url or location):
            return _json_or_none(response)
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        delay = retry_after(response.headers, 1.0)
        while True:
            delay = min(max(delay, self.retry.lro_poll_floor), self.retry.lro_poll_cap)
            if deadline is not None and loop.time() + delay > deadline:
                raise ArmError(0, "OperationTimedOut",
                               f"the operation did not finish within {within:g} s",
                               target=urlsplit(status_url or location or "").path)
            await asyncio.sleep(delay)
            if status_url:
                answer = await self.request("GET", status_url, priority=Priority.OPERATION)
                body = _json(answer, "operation status")
                state = str(body.get("status", "")).lower() if isinstance(body, dict) else ""
                if state in TERMINAL_OPERATION:
                    if state != "succeeded":
                        error = body.get("error") or {}
                        raise ArmError(200, str(error.get("code") or f"Operation{state.title()}"),
                                       str(error.get("message") or f"the operation {state}"),
                                       target=urlsplit(status_url).path)
                    return body
            else:
                assert location is not None
                answer = await self.request("GET", location, priority=Priority.OPERATION)
                if answer.status_code != 202:
                    return _json_or_none(answer)
            delay = retry_after(answer.headers, delay)


def _json(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ArmError(response.status_code, "InvalidResponse",
                       f"{what}: the answer is not JSON: {response.text[:200]!r}",
                       request_id=response.headers.get("x-ms-request-id", "")) from None


def _json_quietly(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _json_or_none(response: httpx.Response) -> Any:
    return _json(response, "answer") if response.content.strip() else None
