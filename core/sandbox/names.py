"""ARM's resource-name rules for the names the sandbox turns into directories and processes.

ARM refuses names with ``<>%&:\\?/``, control characters or a trailing ``.`` or space;
HybridCompute's OpenAPI pattern allows only ``[a-zA-Z0-9-_.]`` (1-54 for machines). The
sandbox applies the narrower set to machine and run-command names alike, and refuses ``..``
too: a run-command name becomes a directory on the host, so nothing in it may climb out
of the machine's directory or mean anything to a shell.
"""

from __future__ import annotations

import re

from core.sandbox.errors import ArmError

MAX_MACHINE_NAME = 64
"""Azure's limit for a Linux VM's name; Arc machine names are shorter still (54)."""
MAX_RUN_COMMAND_NAME = 80

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?")


def check_machine_name(name: str, kind: str) -> None:
    """Raise ARM's 400 ``InvalidResourceName`` unless ``name`` is a safe machine name
    (``kind`` ``vmss``: a scale set's name)."""
    provider = {"vm": "Microsoft.Compute/virtualMachines",
                "vmss": "Microsoft.Compute/virtualMachineScaleSets"}.get(
                    kind, "Microsoft.HybridCompute/machines")
    _check(name, provider, MAX_MACHINE_NAME)


def check_instance_id(instance_id: str) -> None:
    """A scale set instance's id is a decimal number: Compute answers anything else (a
    Flexible member's VM name, say) with this 400 (azure-storage-and-scale-sets.md 6.2)."""
    if not (instance_id.isascii() and instance_id.isdigit()) or len(instance_id) > 10:
        raise ArmError(400, "InvalidParameter",
                       "Virtual Machine Scale Set VM instanceId must be a number.")


def check_run_command_name(name: str, kind: str) -> None:
    """Raise ARM's 400 ``InvalidResourceName`` unless ``name`` is a safe run-command name."""
    provider = ("Microsoft.Compute/virtualMachines/runCommands" if kind == "vm"
                else "Microsoft.HybridCompute/machines/runCommands")
    _check(name, provider, MAX_RUN_COMMAND_NAME)


def is_safe_name(name: str, limit: int = MAX_RUN_COMMAND_NAME) -> bool:
    return len(name) <= limit and ".." not in name and _NAME.fullmatch(name) is not None


def _check(name: str, resource_type: str, limit: int) -> None:
    if is_safe_name(name, limit):
        return
    raise ArmError(400, "InvalidResourceName",
                   f"The resource name {name!r} for type '{resource_type}' is invalid. It "
                   f"must be 1 to {limit} characters: letters, digits, '-', '_' and '.', "
                   "starting with a letter or digit, not ending in '.', without '..'.")
