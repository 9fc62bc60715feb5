"""Azure VMs: ``Microsoft.Compute/virtualMachines/{vm}/runCommands`` (managed run commands)."""

from __future__ import annotations

from core.backends.managed import ManagedRunCommands


class ComputeBackend(ManagedRunCommands):
    """Runs commands on Azure VMs through Compute's managed run commands.

    Compute returns a run command's instance view only when asked with
    ``$expand=instanceView``.
    """

    expand_instance_view = True
