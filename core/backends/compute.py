"""Azure VMs: ``Microsoft.Compute/virtualMachines/{vm}/runCommands`` (managed run commands),
and the action API (``.../runCommand``) where asked for or where managed cannot be used."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from core.azure.arm import ArmError
from core.azure.builtin_catalog import BuiltinCatalog
from core.azure.machine_health import agent_version_tuple
from core.azure.permissions import run_actions
from core.azure.session import AzureSession
from core.backends.action import ActionRunCommands
from core.backends.managed import ManagedRunCommands
from core.events import Finished, MachineEvent
from core.model import Command, HealthStatus, Machine, OsType, RunApi, RunState

MANAGED_LINUX_AGENT = (2, 4, 0, 2)
"""Managed run commands need Linux guest agent 2.4.0.2 or later (azure-run-command.md 9)."""
FORBIDDEN = 403
def action_only_reason(managed_action: str) -> str:
    """A machine's result when the caller may use the action API but not managed ones."""
    return f"managed run commands not permitted (no {managed_action}): ran through the action API"


def old_agent_reason(machine: Machine) -> str:
    """Why managed run commands cannot run on ``machine``'s agent, or "" when they can (or
    its version is not known: then managed is tried, and its answer tells)."""
    version = machine.health.agent_version or ""
    parsed = agent_version_tuple(version)
    if machine.os is not OsType.LINUX or not parsed or parsed >= MANAGED_LINUX_AGENT:
        return ""
    floor = ".".join(map(str, MANAGED_LINUX_AGENT))
    return (f"VM agent {version} is older than {floor}, which managed run commands need: "
            "ran through the action API")


class ComputeBackend(ManagedRunCommands):
    """Runs commands on Azure VMs through Compute's managed run commands, or the action API.

    Compute returns a run command's instance view only when asked with
    ``$expand=instanceView``. ``Command.api`` chooses the API: ``auto`` is managed, falling
    back per machine to the action API when the caller's permissions (read by the health
    check) allow only the action, the managed PUT answers 403 anyway, or the VM's agent is
    too old for managed run commands (the machine's result says which); a built-in command
    id always runs through the action API.
    """

    expand_instance_view = True

    def __init__(self, session: AzureSession) -> None:
        super().__init__(session)
        self.action = ActionRunCommands(session)
        self.builtins = BuiltinCatalog(session.arm)
        """The built-in command ids of the fleet's regions (``fleetrun commands builtin``)."""

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncGenerator[MachineEvent, None]:
        reason = ""
        wrong_os = command.command_id.os is not machine.os
        if command.builtin and wrong_os:
            yield Finished(machine.id, RunState.SKIPPED, error=f"skipped: {command.builtin} is "
                           f"a {command.command_id.os.value.capitalize()} built-in command; "
                           f"this VM runs {machine.os.value.capitalize()}")
            return
        # The permissions read of the health check (the session's, no I/O here) says
        # whether the caller may create managed run commands or only use the action.
        (managed, action), _, role = run_actions(machine)
        action_only = self.session.permissions.known(machine).granted_by == action
        if command.api is RunApi.MANAGED and action_only and not command.builtin:
            yield Finished(machine.id, RunState.SKIPPED, error=(
                f"skipped: {HealthStatus.NOT_PERMITTED.value} (needs {managed} "
                f"({role}) for --api managed; the caller may only use {action}: "
                "--api auto or action runs it through the action API)"))
            return
        if command.api is RunApi.AUTO and not command.builtin:
            reason = old_agent_reason(machine) or (
                action_only_reason(managed) if action_only else "")
        if command.builtin or command.api is RunApi.ACTION or reason:
            events = self.action.run(machine, command, run_id=run_id, reason=reason)
        else:
            events = super().run(machine, command, run_id=run_id)
        async with contextlib.aclosing(events) as following:
            async for event in following:
                yield event

    async def _not_created(
        self, machine: Machine, command: Command, run_id: str, error: ArmError
    ) -> AsyncGenerator[MachineEvent, None]:
        """A 403 on the managed PUT under ``--api auto``: the principal may still have the
        action (``runCommand/action`` without ``runCommands/write``): it runs there."""
        if command.api is not RunApi.AUTO or error.status != FORBIDDEN:
            async for event in super()._not_created(machine, command, run_id, error):
                yield event
            return
        reason = (f"managed run commands not permitted ({error.status} {error.code}): ran "
                  "through the action API")
        async with contextlib.aclosing(
                self.action.run(machine, command, run_id=run_id, reason=reason)) as events:
            async for event in events:
                yield event

    async def cancel(self, machine: Machine, run_id: str) -> None:
        """Delete the managed run command (harmless when there is none); an action run
        cannot be stopped, which :class:`ActionCannotCancel` says."""
        await super().cancel(machine, run_id)
        await self.action.cancel(machine, run_id)
