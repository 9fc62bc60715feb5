"""Azure VMs, scale set instances and Arc servers from Azure Resource Graph, with the health
the graph knows.

:func:`query_machines` lists every VM and Arc-enabled server of the chosen subscriptions with
one KQL query (reference section 6.5), page by page: Flexible scale sets' members are VMs of the
``resources`` table naming their set in ``properties.virtualMachineScaleSet.id``, and Uniform
scale sets' instances come from the ``computeresources`` table through a ``union``
(azure-storage-and-scale-sets.md 6.3). Both are Compute machines tagged ``scaleset`` and
``orchestration``. It takes their health from what the
graph knows: a VM's power state (never its agent's readiness, which Resource Graph does not
carry) and an Arc server's status and agent version. Asking ARM for each agent's actual
state is :func:`core.azure.machine_health.refine_health`'s.

Resource Graph has its own quota (reference 6.4): its calls are not charged to the ARM
budget, a 429 is waited out by the client (``Retry-After``), and when
``x-ms-user-quota-remaining`` reaches 0 the next page waits for
``x-ms-user-quota-resets-after`` instead of running into that 429.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from core.azure.arm import ArmClient, ArmError, subscription_of
from core.azure.machine_health import arc_health, error_text, text_value, vm_power_health
from core.errors import FleetrunError
from core.model import ORCHESTRATION_TAG, SCALE_SET_TAG, Machine, MachineKind, OsType

log = logging.getLogger(__name__)

GRAPH_PATH = "/providers/Microsoft.ResourceGraph/resources"
PAGE_SIZE = 1000
"""Rows per page: Resource Graph's maximum ``$top``."""
SUBSCRIPTION_BATCH = 300
"""Subscriptions per query; Resource Graph's guidance is to stay under about 300."""
QUOTA_RESOLUTION = 1.0
"""Seconds to wait when the quota is spent and ``resets-after`` reads 00:00:00 (it counts
whole seconds, so less than one is left)."""

VM_TYPE = "microsoft.compute/virtualmachines"
ARC_TYPE = "microsoft.hybridcompute/machines"
INSTANCE_TYPE = "microsoft.compute/virtualmachinescalesets/virtualmachines"

MACHINES_QUERY = f"""Resources
| where type in~ ('{VM_TYPE}', '{ARC_TYPE}')
| extend osType = tolower(iff(type =~ '{VM_TYPE}',
                              tostring(properties.storageProfile.osDisk.osType),
                              tostring(properties.osType))),
         powerState = tostring(properties.extended.instanceView.powerState.code),
         arcStatus = tostring(properties.status),
         agentVersion = tostring(properties.agentVersion),
         errorCode = tostring(properties.errorDetails[0].code),
         errorMessage = tostring(properties.errorDetails[0].message),
         scaleSetId = tostring(properties.virtualMachineScaleSet.id),
         agentConfiguration = properties.agentConfiguration
| project id, name, type, location, subscriptionId, tags, osType, powerState, arcStatus,
          agentVersion, errorCode, errorMessage, scaleSetId, agentConfiguration
| union (ComputeResources
    | where type =~ '{INSTANCE_TYPE}'
    | extend osType = tolower(coalesce(tostring(properties.storageProfile.osDisk.osType),
                                       iff(isnotnull(properties.osProfile.windowsConfiguration),
                                           'windows', 'linux'))),
             powerState = tostring(properties.extended.instanceView.powerState.code)
    | project id, name, type, location, subscriptionId, tags, osType, powerState)
| order by id asc"""
"""One query for every machine kind; every column the mapping below reads, nothing more.
Which columns ``computeresources`` rows carry is not documented (reference 6.1): the OS type is
read where a VM has it, else from which OS configuration the model holds."""

_HMS = re.compile(r"^\s*(\d+):(\d{1,2}):(\d{1,2})(?:\.\d+)?\s*$")


class BadRow(FleetrunError, ValueError):
    """A Resource Graph row that cannot be a machine; says what is wrong."""


# ----------------------------------------------------------------------------- listing


async def query_machines(arm: ArmClient, subscriptions: Sequence[str]) -> list[Machine]:
    """Every Azure VM and Arc-enabled server in ``subscriptions``, with graph-level health.

    Args:
        arm: The ARM client (its base URL may be the sandbox's).
        subscriptions: Subscription ids; empty means every subscription the credential sees.

    Returns:
        The machines in id order, each once. Rows that cannot be machines (no id, an unknown
        OS) are left out with a logged warning naming the resource.

    Raises:
        ArmError: Resource Graph refused the query or answered something unreadable.
    """
    batches: list[list[str] | None] = [None]
    if subscriptions:
        wanted = list(subscriptions)
        batches = [wanted[i:i + SUBSCRIPTION_BATCH]
                   for i in range(0, len(wanted), SUBSCRIPTION_BATCH)]
    machines: dict[str, Machine] = {}
    async for row in _rows(arm, batches):
        try:
            machine = machine_from_row(row)
        except BadRow as bad:
            log.warning("Resource Graph: skipping %s", bad)
            continue
        # A resource can show up twice while the graph catches up with a move: keep one.
        machines.setdefault(machine.id.lower(), machine)
    return sorted(machines.values(), key=lambda m: m.id.lower())


async def _rows(arm: ArmClient, batches: list[list[str] | None]) -> AsyncIterator[Any]:
    """The rows of every page of :data:`MACHINES_QUERY` for each batch, unchecked."""
    page, hold = 0, 0.0
    for subscriptions in batches:
        skip_token: str | None = None
        while True:
            if hold > 0:
                log.info("Resource Graph quota spent; waiting %.1f s before query %d",
                         hold, page + 1)
                await asyncio.sleep(hold)
            options: dict[str, Any] = {"$top": PAGE_SIZE, "resultFormat": "objectArray"}
            if skip_token:
                options["$skipToken"] = skip_token
            body: dict[str, Any] = {"query": MACHINES_QUERY, "options": options}
            if subscriptions:
                body["subscriptions"] = subscriptions
            # A query changes nothing: safe to resend after a 5xx or a dropped connection.
            response = await arm.request("POST", GRAPH_PATH, json_body=body, budgeted=False,
                                         idempotent=True)
            page += 1
            hold = quota_wait(response.headers)  # only slept if another query follows
            data, skip_token = _page(response, page)
            for row in data:
                yield row
            if not skip_token:
                break


def _page(response: httpx.Response, number: int) -> tuple[list[Any], str | None]:
    target = f"POST {GRAPH_PATH} (page {number})"
    try:
        body = response.json()
    except ValueError:
        raise ArmError(response.status_code, "InvalidResponse",
                       "Resource Graph answered something that is not JSON",
                       target=target) from None
    if not isinstance(body, dict):
        raise ArmError(response.status_code, "InvalidResponse",
                       "Resource Graph's answer is not a QueryResponse object", target=target)
    data = body.get("data")
    if isinstance(data, dict):  # the "table" format, should a server ignore resultFormat
        data = _table_rows(data)
    if not isinstance(data, list):
        raise ArmError(response.status_code, "InvalidResponse",
                       "Resource Graph's answer has no data rows", target=target)
    if str(body.get("resultTruncated", "false")).lower() == "true":
        log.warning("Resource Graph truncated the machine list at %d rows", len(data))
    token = body.get("$skipToken")
    return data, token if isinstance(token, str) and token else None


def _table_rows(data: Mapping[str, Any]) -> list[Any] | None:
    columns, rows = data.get("columns"), data.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        return None
    names = [c.get("name") if isinstance(c, dict) else None for c in columns]
    return [dict(zip(names, row, strict=False)) if isinstance(row, list) else row
            for row in rows]


def quota_wait(headers: Mapping[str, str]) -> float:
    """Seconds to hold the next query: ``resets-after`` once ``quota-remaining`` is 0."""
    remaining = headers.get("x-ms-user-quota-remaining")
    try:
        if remaining is None or int(remaining) > 0:
            return 0.0
    except ValueError:
        return 0.0
    found = _HMS.match(headers.get("x-ms-user-quota-resets-after", ""))
    if found is None:
        return QUOTA_RESOLUTION
    hours, minutes, seconds = (int(g) for g in found.groups())
    return float(hours * 3600 + minutes * 60 + seconds) or QUOTA_RESOLUTION


# ----------------------------------------------------------------------------- rows


def machine_from_row(row: object) -> Machine:
    """A machine from one row of :data:`MACHINES_QUERY`.

    Raises:
        BadRow: The row has no id, an unknown type or OS; the message names the resource.
    """
    if not isinstance(row, dict):
        raise BadRow(f"a row that is not an object: {type(row).__name__}")
    resource_id = text_value(row.get("id"))
    name = text_value(row.get("name")) or resource_id.rstrip("/").rpartition("/")[2]
    if not resource_id.startswith("/subscriptions/"):
        shown = f"resource {name!r}" if name else "a resource"
        raise BadRow(f"{shown}: no ARM resource id (id = {row.get('id')!r})")
    resource_type = text_value(row.get("type")).lower()
    kind = {VM_TYPE: MachineKind.VM, INSTANCE_TYPE: MachineKind.VM,
            ARC_TYPE: MachineKind.ARC}.get(resource_type)
    if kind is None:
        raise BadRow(f"{resource_id}: type {row.get('type')!r} is neither a VM ({VM_TYPE}), "
                     f"a scale set instance ({INSTANCE_TYPE}) nor an Arc server ({ARC_TYPE})")
    tags = _tags(row.get("tags"))
    if resource_type == INSTANCE_TYPE:
        scale_set, instance = uniform_instance(resource_id)
        if not scale_set:
            raise BadRow(f"{resource_id}: not a scale set instance's id "
                         "(.../virtualMachineScaleSets/SET/virtualMachines/N)")
        name = f"{scale_set}/{instance}"
        tags |= {SCALE_SET_TAG: scale_set, ORCHESTRATION_TAG: "Uniform"}
    elif scale_set_id := text_value(row.get("scaleSetId")):
        tags |= {SCALE_SET_TAG: scale_set_id.rstrip("/").rpartition("/")[2],
                 ORCHESTRATION_TAG: "Flexible"}
    os_name = text_value(row.get("osType")).lower()
    if os_name not in (OsType.LINUX, OsType.WINDOWS):
        raise BadRow(f"{resource_id}: OS type {row.get('osType')!r} is not allowed; "
                     "allowed: linux, windows")
    if kind is MachineKind.VM:
        health = vm_power_health(text_value(row.get("powerState")))
    else:
        health = arc_health(text_value(row.get("arcStatus")),
                            text_value(row.get("agentVersion")),
                            error_text(row.get("errorCode"), row.get("errorMessage")),
                            agent_configuration=row.get("agentConfiguration"),
                            os_type=OsType(os_name))
    return Machine(
        id=resource_id,
        name=name,
        kind=kind,
        os=OsType(os_name),
        location=text_value(row.get("location")),
        subscription=text_value(row.get("subscriptionId")) or subscription_of(resource_id),
        tags=tags,
        health=health,
    )


def uniform_instance(resource_id: str) -> tuple[str, str]:
    """``(scale set, instance id)`` of a Uniform scale set instance's resource id, else
    ``("", "")``: ``.../providers/Microsoft.Compute/virtualMachineScaleSets/{set}/
    virtualMachines/{instance id}`` (any case)."""
    parts = resource_id.strip("/").split("/")
    if (len(parts) == 10 and parts[6].lower() == "virtualmachinescalesets"
            and parts[8].lower() == "virtualmachines" and parts[5].lower() == "microsoft.compute"):
        return parts[7], parts[9]
    return "", ""


def _tags(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v if isinstance(v, str) else "" if v is None else str(v)
            for k, v in value.items()}
