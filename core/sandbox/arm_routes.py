"""ARM paths the sandbox answers, matched case-insensitively as ARM does.

A route is a tuple of lowercase literal segments and ``{placeholders}``; matching keeps
the caller's spelling of the placeholder values (resource names keep their case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.sandbox import api_versions

_RG = ("subscriptions", "{sub}", "resourcegroups", "{rg}", "providers")
_VM = (*_RG, "microsoft.compute", "virtualmachines", "{machine}")
_VMSS_VM = (*_RG, "microsoft.compute", "virtualmachinescalesets", "{scaleset}", "virtualmachines",
            "{machine}")
"""A Uniform scale set's instance; ``{machine}`` is its decimal instance id."""
_ARC = (*_RG, "microsoft.hybridcompute", "machines", "{machine}")
_STORAGE = (*_RG, "microsoft.storage", "storageaccounts", "{account}")
_LOCATION = ("subscriptions", "{sub}", "providers", "microsoft.compute", "locations",
             "{location}")


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    pattern: tuple[str, ...]
    methods: tuple[str, ...]
    versions: tuple[str, ...]
    kind: str = ""
    """``vm``, ``vmss`` (a Uniform scale set's instance) or ``arc`` when the route is about
    one machine kind."""


ROUTES = (
    Route("vm", _VM, ("GET",), api_versions.COMPUTE, "vm"),
    Route("vm_instance_view", (*_VM, "instanceview"), ("GET",), api_versions.COMPUTE, "vm"),
    Route("run_commands", (*_VM, "runcommands"), ("GET",), api_versions.COMPUTE, "vm"),
    Route("run_command", (*_VM, "runcommands", "{name}"), ("GET", "PUT", "PATCH", "DELETE"),
          api_versions.COMPUTE, "vm"),
    # The action API and the built-in command documents (reference 3).
    Route("vm_run_command_action", (*_VM, "runcommand"), ("POST",), api_versions.COMPUTE,
          "vm"),
    # A Uniform scale set's instances: the same operations, under the set (reference 6.4).
    Route("vmss_vm", _VMSS_VM, ("GET",), api_versions.COMPUTE, "vmss"),
    Route("vm_instance_view", (*_VMSS_VM, "instanceview"), ("GET",), api_versions.COMPUTE,
          "vmss"),
    Route("run_commands", (*_VMSS_VM, "runcommands"), ("GET",), api_versions.COMPUTE, "vmss"),
    Route("run_command", (*_VMSS_VM, "runcommands", "{name}"), ("GET", "PUT", "PATCH", "DELETE"),
          api_versions.COMPUTE, "vmss"),
    Route("vm_run_command_action", (*_VMSS_VM, "runcommand"), ("POST",), api_versions.COMPUTE,
          "vmss"),
    Route("builtin_run_commands", (*_LOCATION, "runcommands"), ("GET",), api_versions.COMPUTE),
    Route("builtin_run_command", (*_LOCATION, "runcommands", "{command}"), ("GET",),
          api_versions.COMPUTE),
    Route("machine", _ARC, ("GET",), api_versions.ARC_MACHINES, "arc"),
    Route("run_commands", (*_ARC, "runcommands"), ("GET",), api_versions.ARC_RUN_COMMANDS,
          "arc"),
    Route("run_command", (*_ARC, "runcommands", "{name}"), ("GET", "PUT", "PATCH", "DELETE"),
          api_versions.ARC_RUN_COMMANDS, "arc"),
    Route("vm_list", (*_RG, "microsoft.compute", "virtualmachines"), ("GET",),
          api_versions.COMPUTE, "vm"),
    Route("vm_list", ("subscriptions", "{sub}", "providers", "microsoft.compute",
                      "virtualmachines"), ("GET",), api_versions.COMPUTE, "vm"),
    Route("machine_list", (*_RG, "microsoft.hybridcompute", "machines"), ("GET",),
          api_versions.ARC_MACHINES, "arc"),
    Route("machine_list", ("subscriptions", "{sub}", "providers", "microsoft.hybridcompute",
                           "machines"), ("GET",), api_versions.ARC_MACHINES, "arc"),
    Route("compute_operation", ("subscriptions", "{sub}", "providers", "microsoft.compute",
                                "locations", "{location}", "operations", "{operation}"),
          ("GET",), api_versions.COMPUTE),
    Route("arc_operation_status", ("subscriptions", "{sub}", "providers",
                                   "microsoft.hybridcompute", "locations", "{location}",
                                   "operationstatus", "{operation}"),
          ("GET",), api_versions.ARC_RUN_COMMANDS),
    Route("arc_operation_result", ("subscriptions", "{sub}", "providers",
                                   "microsoft.hybridcompute", "locations", "{location}",
                                   "operationresults", "{operation}"),
          ("GET",), api_versions.ARC_RUN_COMMANDS),
    # Microsoft.Storage: accounts listed, blob containers (azure-storage-and-scale-sets.md 1).
    Route("storage_accounts", ("subscriptions", "{sub}", "providers", "microsoft.storage",
                               "storageaccounts"), ("GET",), api_versions.STORAGE),
    Route("storage_accounts", (*_RG, "microsoft.storage", "storageaccounts"), ("GET",),
          api_versions.STORAGE),
    Route("blob_container", (*_STORAGE, "blobservices", "default", "containers",
                             "{container}"), ("GET", "PUT", "DELETE"), api_versions.STORAGE),
    Route("resource_graph", ("providers", "microsoft.resourcegraph", "resources"), ("POST",),
          api_versions.RESOURCE_GRAPH),
    # What the caller may do at a subscription or resource group (core/sandbox/rbac.py).
    Route("permissions", ("subscriptions", "{sub}", "providers", "microsoft.authorization",
                          "permissions"), ("GET",), api_versions.AUTHORIZATION),
    Route("permissions", (*_RG, "microsoft.authorization", "permissions"), ("GET",),
          api_versions.AUTHORIZATION),
)


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: dict[str, str]


def match(segments: Sequence[str]) -> Match | None:
    """The route a path's segments name, or None."""
    lowered = [segment.lower() for segment in segments]
    for route in ROUTES:
        if len(route.pattern) != len(segments):
            continue
        params: dict[str, str] = {}
        for want, got, original in zip(route.pattern, lowered, segments, strict=True):
            if want.startswith("{"):
                if not original:
                    break
                params[want[1:-1]] = original
            elif want != got:
                break
        else:
            return Match(route, params)
    return None
