"""The ``[azure]`` table of ``config.toml``: which subscriptions, where output goes, how fast.

fleetrun reads ``config_dir()/config.toml`` (``FLEETRUN_CONFIG_DIR`` moves the folder). Only
the ``[azure]`` table is read here; other tables belong to other parts of fleetrun. Every key
is optional; ``config.example.toml`` beside this module is a commented example.

``[azure]``

- ``subscriptions``: a list of subscription ids (GUIDs). Empty or absent: every subscription
  the credential can see (a tenant-scope Resource Graph query).
- ``arm_endpoint``: the Azure Resource Manager URL, scheme and host only. Default
  ``https://management.azure.com``; ``http://`` is allowed for loopback hosts only (the sandbox
  served by ``fleetrun sandbox serve``).
- ``credential``: ``default`` (azure-identity's chain: environment service principal,
  workload identity, managed identity, ``az login``) or ``sandbox`` (the bearer token of a
  ``fleetrun sandbox serve``, read from ``$FLEETRUN_SANDBOX_TOKEN``, never from a file;
  allowed only with a loopback ``arm_endpoint``).
- ``output_container``: the blob container run commands write their output to, as a
  container SAS URL with ``racwl`` permissions (read, add, create, write, list), for example
  ``https://ACCOUNT.blob.core.windows.net/CONTAINER?sv=...&sr=c&sp=racwl&se=...&sig=...``
  (path style ``http://127.0.0.1:10000/ACCOUNT/CONTAINER?...`` for Azurite or the sandbox).
  With ``output_identity`` set it is a plain container URL without a SAS. Empty (the
  default): no output blobs, only the 4 KB tails of the instance view. The environment
  variable ``FLEETRUN_AZURE_OUTPUT_CONTAINER`` overrides it, so the SAS need not be stored in
  a file. The SAS signature (``sig=``) is never shown: not in errors, not in ``repr``.
- ``output_mode``: how the machines get at ``output_container``. ``"container-sas"`` (the
  default): the container SAS URL above, as given. ``"user-delegation"`` (what ``fleetrun azure
  setup-output`` writes): ``output_container`` is a plain container URL (no SAS); each run
  asks Storage for a user-delegation key with your Entra token and signs one SAS per blob
  (writers ``racw`` for the output, ``r`` for an uploaded script), and fleetrun reads the
  blobs with your token. You need Storage Blob Data Contributor on the container and
  ``generateUserDelegationKey`` on the account (any Storage Blob Data role at account scope,
  or Storage Blob Delegator).
- ``output_identity``: who writes the output blobs. ``""`` (the default): the SAS in
  ``output_container``. ``"system"``: the machine's system-assigned managed identity; or a
  user-assigned identity's client id (a GUID). Then fleetrun reads the blobs with its own
  Entra token, and the identities need a Storage Blob Data role on the container. Arc
  servers cannot write blobs as an identity: in user-delegation mode they get a SAS.
- ``cleanup``: ``"delete"`` (default) deletes each run command once it has finished (a VM
  holds at most 25 of them); ``"keep"`` leaves them for inspection in the portal or ``az``.
- ``poll_interval``: seconds between instance-view polls of one machine when the ARM read
  budget allows (a number above 0; default 5.0). Large fleets are polled less often: the
  budget is shared.

``[azure.api_versions]`` (reference section 1): ``compute`` (default ``2025-04-01``),
``hybridcompute`` (``2025-01-13``) and ``resourcegraph`` (``2024-04-01``), each
``YYYY-MM-DD`` or ``YYYY-MM-DD-preview``.

``[azure.throttle]``: the client-side mirror of ARM's token buckets per subscription
(reference section 7.2). ``reads``, ``writes`` and ``deletes`` are each a table with
``capacity`` (requests a full bucket holds, a whole number) and ``refill_per_second`` (above
0): defaults 250/25, 200/10 and 200/10, and a member left out keeps its default. ``reserve``
(default 0.05, from 0 up to but not including 1) is the share of each bucket left for other
clients of the subscription such as the portal; a bucket must hold at least one request more
than its reserve.

Every bad value is a :class:`SettingsError` whose message names the key
(``azure.cleanup: 'remove' is not allowed; allowed: delete, keep``); unknown keys are errors
too, so a misspelt key does not silently fall back to its default.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeGuard
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

from core.azure.api_versions import PUBLIC_CLOUD, ApiVersions
from core.azure.budget import BucketLimit, BudgetLimits
from core.config import config_dir
from core.config_file import ConfigFileError, read_config
from core.errors import BadInputError
from core.field_names import shown_key

OUTPUT_CONTAINER_ENV = "FLEETRUN_AZURE_OUTPUT_CONTAINER"
SANDBOX_TOKEN_ENV = "FLEETRUN_SANDBOX_TOKEN"
MIN_SANDBOX_TOKEN = 16
CONFIG_FILE = "config.toml"
SAS_PERMISSIONS = "racwl"
"""Read (tail), add (append blocks), create, write (put blob), list (find a run's blobs)."""
REDACTED = "REDACTED"

Cleanup = Literal["delete", "keep"]
CLEANUP_CHOICES: tuple[Cleanup, ...] = ("delete", "keep")
KEYS = ("subscriptions", "arm_endpoint", "credential", "output_container", "output_mode",
        "output_identity", "cleanup", "poll_interval", "api_versions", "throttle")
OutputMode = Literal["container-sas", "user-delegation"]
OUTPUT_MODE_CHOICES: tuple[OutputMode, ...] = ("container-sas", "user-delegation")
Credential = Literal["default", "sandbox"]
CREDENTIAL_CHOICES: tuple[Credential, ...] = ("default", "sandbox")
API_VERSION_KEYS = ("compute", "hybridcompute", "resourcegraph")
THROTTLE_KEYS = ("reads", "writes", "deletes", "reserve")
BUCKET_KEYS = ("capacity", "refill_per_second")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(?:-preview)?$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
"""RFC 6750's ``b64token``: what may follow ``Bearer`` in an Authorization header."""
_SIG = re.compile(r"(\bsig=)[^&#\s]*", re.IGNORECASE)
_LOOPBACK_NAMES = frozenset({"localhost"})
_MAX_CAPACITY = 1_000_000


class SettingsError(BadInputError, ValueError):
    """A config value fleetrun cannot use; the message names the key and what is allowed."""


def redacted_url(url: str) -> str:
    """``url`` with the value of any ``sig=`` query parameter replaced, safe to show or log."""
    return _SIG.sub(rf"\g<1>{REDACTED}", url)


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """The ``[azure]`` settings, checked; see the module docstring for every key."""

    configured: bool = False
    """Whether config.toml has an ``[azure]`` table at all."""
    subscriptions: tuple[str, ...] = ()
    arm_endpoint: str = PUBLIC_CLOUD
    credential: Credential = "default"
    output_container: str = ""
    output_mode: OutputMode = "container-sas"
    output_identity: str = ""
    cleanup: Cleanup = "delete"
    poll_interval: float = 5.0
    api_versions: ApiVersions = field(default_factory=ApiVersions)
    throttle: BudgetLimits = field(default_factory=BudgetLimits)

    @property
    def uses_managed_identity(self) -> bool:
        """Whether the machines' managed identities write the output blobs (no SAS)."""
        return self.output_identity != ""

    @property
    def delegates(self) -> bool:
        """Whether each run signs its own per-blob SAS with a user-delegation key."""
        return self.output_mode == "user-delegation" and self.output_container != ""

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "output_container":
                value = redacted_url(value)
            shown.append(f"{f.name}={value!r}")
        return f"AzureSettings({', '.join(shown)})"


def load_azure_settings(path: Path | None = None) -> AzureSettings:
    """Read and check the ``[azure]`` table of ``config.toml``.

    A missing file or a file without ``[azure]`` gives the defaults (``configured`` False);
    ``FLEETRUN_AZURE_OUTPUT_CONTAINER`` overrides ``output_container`` either way.

    Args:
        path: The config file; ``config_dir()/config.toml`` when None.

    Raises:
        SettingsError: The file cannot be read or parsed, or a value is not allowed.
    """
    path = config_dir() / CONFIG_FILE if path is None else path
    try:
        data = read_config(path)
    except ConfigFileError as exc:
        raise SettingsError(str(exc)) from None
    configured = "azure" in data
    table = data.get("azure", {})
    try:
        if not isinstance(table, dict):
            raise SettingsError("azure: must be a table ([azure]), got "
                                f"{_type_name(table)}; allowed keys: {', '.join(KEYS)}")
        return parse_azure_settings(table, configured=configured, environ=os.environ)
    except SettingsError as exc:
        if f"(from {OUTPUT_CONTAINER_ENV})" in str(exc):
            raise  # the value came from the environment, not from the file
        raise SettingsError(f"{path}: {exc}") from None


def parse_azure_settings(
    table: Mapping[str, Any], *, configured: bool = True,
    environ: Mapping[str, str] | None = None,
) -> AzureSettings:
    """Check an already-parsed ``[azure]`` table (``load_azure_settings`` without the file).

    Args:
        table: The ``[azure]`` table's contents.
        configured: Whether the table was present in the file.
        environ: Where ``FLEETRUN_AZURE_OUTPUT_CONTAINER`` is looked up; not at all when None.

    Raises:
        SettingsError: A value is not allowed.
    """
    _only(table, "azure", KEYS)
    identity = _output_identity(table.get("output_identity", ""))
    mode = _output_mode(table.get("output_mode", "container-sas"))
    container_where, container = "azure.output_container", table.get("output_container", "")
    override = (environ or {}).get(OUTPUT_CONTAINER_ENV, "")
    if override.strip():
        container_where = f"azure.output_container (from {OUTPUT_CONTAINER_ENV})"
        container = override
    endpoint = _endpoint(table.get("arm_endpoint", PUBLIC_CLOUD))
    return AzureSettings(
        configured=configured,
        subscriptions=_subscriptions(table.get("subscriptions", [])),
        arm_endpoint=endpoint,
        credential=_credential(table.get("credential", "default"), endpoint),
        output_container=_output_container(container, container_where, identity, mode),
        output_mode=mode,
        output_identity=identity,
        cleanup=_cleanup(table.get("cleanup", "delete")),
        poll_interval=_positive_number(table.get("poll_interval", 5.0), "azure.poll_interval"),
        api_versions=_api_versions(_table(table, "api_versions")),
        throttle=_throttle(_table(table, "throttle")),
    )


def sandbox_token(environ: Mapping[str, str]) -> str:
    """The bearer token ``credential = "sandbox"`` presents: ``$FLEETRUN_SANDBOX_TOKEN``.

    Raises:
        SettingsError: The variable is unset or empty, or does not hold a usable token.
    """
    value = environ.get(SANDBOX_TOKEN_ENV, "")
    if not value.strip():
        raise SettingsError(
            f"azure.credential: 'sandbox' needs the sandbox's token in ${SANDBOX_TOKEN_ENV}, "
            "which is not set; `fleetrun sandbox serve` prints the export line to use (or "
            "set the variable for both processes)")
    return checked_sandbox_token(value)


def checked_sandbox_token(value: str) -> str:
    """``value`` as a bearer token, or a SettingsError naming the variable (never the value).

    Raises:
        SettingsError: Shorter than :data:`MIN_SANDBOX_TOKEN`, or characters a bearer
            token cannot hold.
    """
    token = value.strip()
    if len(token) < MIN_SANDBOX_TOKEN or not _B64TOKEN.fullmatch(token):
        raise SettingsError(
            f"{SANDBOX_TOKEN_ENV}: not a usable token; allowed: at least {MIN_SANDBOX_TOKEN} "
            "characters of letters, digits and - . _ ~ + / (with = only at the end)")
    return token


# ----------------------------------------------------------------------------- keys


def _credential(value: object, endpoint: str) -> Credential:
    where = "azure.credential"
    for choice in CREDENTIAL_CHOICES:
        if value == choice:
            host = (urlsplit(endpoint).hostname or "").lower()
            if choice == "sandbox" and not (host in _LOOPBACK_NAMES or _is_loopback(host)):
                raise SettingsError(f"{where}: 'sandbox' is allowed only with a loopback "
                                    f"arm_endpoint (fleetrun sandbox serve), not {endpoint!r}")
            return choice
    raise SettingsError(f"{where}: {_shown(value)} is not allowed; use one of "
                        f"{', '.join(CREDENTIAL_CHOICES)}")


def _subscriptions(value: object) -> tuple[str, ...]:
    where = "azure.subscriptions"
    if not isinstance(value, list):
        raise SettingsError(f"{where}: must be a list of subscription ids (GUIDs), e.g. "
                            f"[\"00000000-0000-0000-0000-000000000000\"], got {_shown(value)}")
    found: dict[str, str] = {}
    for index, item in enumerate(value):
        if not isinstance(item, str) or not _GUID.match(item.strip()):
            raise SettingsError(f"{where}[{index}]: {_shown(item)} is not a subscription id; "
                                "allowed: a GUID like 00000000-0000-0000-0000-000000000000")
        found.setdefault(item.strip().lower(), item.strip())  # listed twice: queried once
    return tuple(found.values())


def _endpoint(value: object) -> str:
    where = "azure.arm_endpoint"
    allowed = ("allowed: an https URL with scheme and host only, like "
               f"{PUBLIC_CLOUD} (http only for 127.0.0.1/localhost)")
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{where}: must be a URL, got {_shown(value)}; {allowed}")
    parts = _split(value.strip(), where, allowed)
    if parts.path.strip("/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise SettingsError(f"{where}: {_shown(value)} has more than a scheme and host; "
                            f"{allowed}")
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _output_identity(value: object) -> str:
    where = "azure.output_identity"
    allowed = ("allowed: \"\" (the SAS in azure.output_container writes the blobs), "
               "\"system\" (the machine's system-assigned identity) or a user-assigned "
               "identity's client id (a GUID)")
    if not isinstance(value, str):
        raise SettingsError(f"{where}: must be a string, got {_shown(value)}; {allowed}")
    value = value.strip()
    if value.lower() == "system":
        return "system"
    if value == "" or _GUID.match(value):
        return value.lower()
    raise SettingsError(f"{where}: {_shown(value)} is not allowed; {allowed}")


def _output_mode(value: object) -> OutputMode:
    for choice in OUTPUT_MODE_CHOICES:
        if value == choice:
            return choice
    raise SettingsError(f"azure.output_mode: {_shown(value)} is not allowed; allowed: "
                        "container-sas (the SAS in azure.output_container) or user-delegation "
                        "(a plain container URL; each run signs its own SAS with your Entra "
                        "login; `fleetrun azure setup-output` sets it up)")


def _output_container(value: object, where: str, identity: str,
                      mode: OutputMode = "container-sas") -> str:
    example = ("https://ACCOUNT.blob.core.windows.net/CONTAINER?<SAS>, or "
               "http://127.0.0.1:PORT/ACCOUNT/CONTAINER?<SAS> for Azurite or the sandbox")
    allowed = f"allowed: \"\" (no output blobs) or a container URL like {example}"
    if not isinstance(value, str):
        raise SettingsError(f"{where}: must be a string, got {_type_name(value)}; {allowed}")
    value = value.strip()
    if not value:
        return ""
    shown = redacted_url(value)
    parts = _split(value, where, allowed)
    segments = [s for s in parts.path.split("/") if s]
    host = parts.hostname or ""
    path_style = host in _LOOPBACK_NAMES or _is_ip(host)
    expected = 2 if path_style else 1
    if len(segments) != expected or parts.fragment or "@" in parts.netloc:
        form = "/ACCOUNT/CONTAINER" if path_style else "/CONTAINER"
        raise SettingsError(f"{where}: {shown!r} does not name a container: its path must be "
                            f"{form} (a container, not a blob); {allowed}")
    container = segments[-1]
    if not _CONTAINER.match(container):
        raise SettingsError(f"{where}: {container!r} is not a valid container name (3-63 "
                            "lowercase letters, digits and single hyphens)")
    query = parse_qs(parts.query, keep_blank_values=True)
    if mode == "user-delegation":
        if parts.query:
            raise SettingsError(f"{where}: must be a plain container URL without a SAS or "
                                "other query when azure.output_mode is user-delegation (each "
                                f"run signs its own per-blob SAS), got {shown!r}")
    elif identity:
        if parts.query:
            raise SettingsError(f"{where}: must be a plain container URL without a SAS or "
                                "other query when azure.output_identity is set (the machines' "
                                f"managed identity writes the blobs), got {shown!r}")
    else:
        _check_sas(query, where, shown)
    path = "/" + "/".join(segments)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def _check_sas(query: Mapping[str, list[str]], where: str, shown: str) -> None:
    def one(name: str) -> str:
        values = query.get(name) or [""]
        return values[0]

    if not one("sig"):
        raise SettingsError(
            f"{where}: {shown!r} has no SAS (no sig=); give a container SAS URL with "
            f"{SAS_PERMISSIONS} permissions, or set azure.output_identity to have the machines' "
            "managed identity write the blobs")
    permissions = one("sp")
    missing = [p for p in SAS_PERMISSIONS if p not in permissions]
    if missing:
        raise SettingsError(
            f"{where}: the SAS permissions sp={permissions!r} lack {', '.join(missing)}; "
            f"a container SAS needs {SAS_PERMISSIONS} (read, add, create, write, list)")
    resource = one("sr")
    if resource and resource != "c":
        raise SettingsError(f"{where}: the SAS is for sr={resource!r}; allowed: a container "
                            "SAS (sr=c) or an account SAS, so that each run can create blobs")
    expiry = one("se")
    if expiry:
        try:
            ends = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
        except ValueError:
            raise SettingsError(f"{where}: the SAS expiry se={expiry!r} is not an ISO 8601 "
                                "time like 2030-01-31T00:00:00Z") from None
        ends = ends if ends.tzinfo else ends.replace(tzinfo=UTC)
        if ends <= datetime.now(UTC):
            raise SettingsError(f"{where}: the SAS expired at {expiry}; make a new one")


def _cleanup(value: object) -> Cleanup:
    for choice in CLEANUP_CHOICES:
        if value == choice:
            return choice
    raise SettingsError(f"azure.cleanup: {_shown(value)} is not allowed; allowed: "
                        f"{', '.join(CLEANUP_CHOICES)} (delete finished run commands, or keep "
                        "them)")


def _api_versions(table: Mapping[str, Any]) -> ApiVersions:
    _only(table, "azure.api_versions", API_VERSION_KEYS)
    default = ApiVersions()
    chosen: dict[str, str] = {}
    for key in API_VERSION_KEYS:
        value = table.get(key, getattr(default, key))
        if not isinstance(value, str) or not _API_VERSION.match(value.strip()):
            raise SettingsError(f"azure.api_versions.{key}: {_shown(value)} is not an "
                                "api-version; allowed: YYYY-MM-DD or YYYY-MM-DD-preview, e.g. "
                                f"{getattr(default, key)}")
        chosen[key] = value.strip()
    return ApiVersions(**chosen)


def _throttle(table: Mapping[str, Any]) -> BudgetLimits:
    _only(table, "azure.throttle", THROTTLE_KEYS)
    default = BudgetLimits()
    reserve = table.get("reserve", default.reserve)
    if not _is_number(reserve) or not 0 <= reserve < 1:
        raise SettingsError(f"azure.throttle.reserve: {_shown(reserve)} is not allowed; "
                            "allowed: a share from 0 up to (not including) 1, e.g. 0.05")
    reserve = float(reserve)
    buckets = {
        kind: _bucket(_table(table, kind, "azure.throttle"), f"azure.throttle.{kind}",
                      default.for_kind(kind), reserve)
        for kind in ("reads", "writes", "deletes")
    }
    return BudgetLimits(reads=buckets["reads"], writes=buckets["writes"],
                        deletes=buckets["deletes"], reserve=reserve)


def _bucket(table: Mapping[str, Any], where: str, default: BucketLimit,
            reserve: float) -> BucketLimit:
    _only(table, where, BUCKET_KEYS)
    capacity = table.get("capacity", default.capacity)
    if not isinstance(capacity, int) or isinstance(capacity, bool) \
            or not 1 <= capacity <= _MAX_CAPACITY:
        raise SettingsError(f"{where}.capacity: {_shown(capacity)} is not allowed; allowed: "
                            f"a whole number of requests from 1 to {_MAX_CAPACITY}")
    if 1.0 + capacity * reserve > capacity:
        # The budget keeps capacity*reserve back and needs one whole token beyond it.
        needed = math.ceil(1.0 / (1.0 - reserve))
        while 1.0 + needed * reserve > needed:  # float rounding at the edge
            needed += 1
        raise SettingsError(f"{where}.capacity: {capacity} leaves no request to send once "
                            f"azure.throttle.reserve ({reserve:g}) is held back; allowed: "
                            f"at least {needed} with this reserve")
    refill = _positive_number(table.get("refill_per_second", default.refill_per_second),
                              f"{where}.refill_per_second")
    return BucketLimit(capacity, refill)


# ----------------------------------------------------------------------------- helpers


def _only(table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    unknown = sorted(shown_key(key) for key in table if key not in allowed)
    if unknown:
        raise SettingsError(f"{where}.{unknown[0]}: unknown key; allowed in [{where}]: "
                            f"{', '.join(allowed)}")


def _table(table: Mapping[str, Any], key: str, where: str = "azure") -> Mapping[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise SettingsError(f"{where}.{key}: must be a table ([{where}.{key}] or "
                            f"{key} = {{ ... }}), got {_type_name(value)}")
    return value


def _positive_number(value: object, where: str) -> float:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{where}: {_shown(value)} is not allowed; allowed: a number above "
                            "0 (seconds for intervals)")
    return float(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _split(value: str, where: str, allowed: str) -> SplitResult:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise SettingsError(f"{where}: {redacted_url(value)!r} is not a URL; {allowed}") \
            from None
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return parts
    if parts.scheme == "http" and (host in _LOOPBACK_NAMES or _is_loopback(host)):
        return parts
    raise SettingsError(f"{where}: {redacted_url(value)!r} is not allowed; {allowed}")


def _is_ip(host: str) -> bool:
    return _ip_check(host, lambda _address: True)


def _is_loopback(host: str) -> bool:
    return _ip_check(host, lambda address: bool(address.is_loopback))


def _ip_check(host: str, check: Callable[[Any], bool]) -> bool:
    try:
        return check(ipaddress.ip_address(host))
    except ValueError:
        return False


def _type_name(value: object) -> str:
    return {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    """A bad value as an error message may quote it: strings redacted, containers by type."""
    if isinstance(value, str):
        return repr(redacted_url(value))
    if isinstance(value, list | dict):
        return _type_name(value)
    return repr(value)
