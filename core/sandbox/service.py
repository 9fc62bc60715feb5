"""The sandbox's state: machines, their run commands, long-running operations, blobs.

The HTTP layer (``arm_app``) translates requests into calls here; everything about what
the service *does* — re-PUT semantics, the 25-per-VM limit, killing on update or delete,
which machines refuse run commands — lives in this module and ``runcommands``.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core import scratch
from core.sandbox.action_runs import ActionRuns
from core.sandbox.agent import AgentSettings, Execution
from core.sandbox.blob_sink import BlobSinks
from core.sandbox.blobstore import BlobStore
from core.sandbox.errors import ArmError
from core.sandbox.fleet import Faults, FleetSpec, MachineSpec
from core.sandbox.machines import SimMachine
from core.sandbox.runcommands import (
    ARC,
    COMPUTE,
    MAX_PER_VM,
    RunCommand,
    RunCommandInput,
    parse_put,
    run_request,
)
from core.sandbox.storage_arm import StorageArm


@dataclass(eq=False)
class Operation:
    """A long-running operation a PUT or DELETE started, polled through its URLs."""

    id: str
    action: str
    """``put`` or ``delete``."""
    provider: str
    subscription: str
    location: str
    run_command: RunCommand
    seq: int
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    superseded: bool = False

    @property
    def status(self) -> str:
        if self.action == "delete":
            return "Succeeded" if self.done.is_set() else "InProgress"
        if self.superseded:
            return "Canceled"
        state = self.run_command.provisioning_state
        if state in ("Succeeded", "Failed"):
            if self.ended is None:
                self.ended = datetime.now(UTC)
            return state
        return "InProgress"

    @property
    def error(self) -> dict[str, str] | None:
        if self.status == "Canceled":
            return {"code": "OperationPreempted",
                    "message": "A newer PUT of the same run command replaced this operation."}
        return self.run_command.provisioning_error if self.status == "Failed" else None


class SandboxService:
    """Everything the sandbox knows and runs. Create and close it inside an event loop."""

    def __init__(self, fleet: FleetSpec, *, root: Path | None = None) -> None:
        self.fleet = fleet
        self._own_root = root is None
        # Created by the first run that needs it, so listing machines leaves nothing behind;
        # in fleetrun's temporary place, so it goes even if this process is killed.
        self.root = root or scratch.folder_path() / f"sandbox-{secrets.token_hex(6)}"
        self.rng = random.Random(fleet.seed)
        self.blobs = BlobStore(max_block=fleet.max_append_block)
        self.storage = StorageArm(fleet, self.blobs)
        """The fleet's storage accounts as ARM shows them (their blobs are in ``blobs``)."""
        self.sinks = BlobSinks(self.blobs, self.storage.identity_role)
        self.machines: dict[tuple[str, str, str, str], SimMachine] = {}
        self._run_commands: dict[int, dict[str, RunCommand]] = {}
        self._deletes_failed: dict[int, int] = {}
        """Run command DELETEs answered 500 so far, by machine (the ``delete_errors`` fault)."""
        self.operations: dict[str, Operation] = {}
        self.action_runs = ActionRuns(fleet, self.sinks, self.rng)
        """Runs of the action API (``POST .../runCommand``), by operation id."""
        self._background: set[asyncio.Task[None]] = set()
        for spec in fleet.machines:
            machine = SimMachine(spec, self.root / "machines" / machine_folder(spec))
            self.machines[machine_key(spec)] = machine

    async def aclose(self) -> None:
        """Kill every running script, then remove the sandbox's files if it made them."""
        for commands in self._run_commands.values():
            for command in commands.values():
                await command.execution.stop()
        await self.action_runs.aclose()
        for task in list(self._background):
            await task
        await self.sinks.aclose()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    # --------------------------------------------------------------------------- machines

    def all_machines(self) -> Iterator[SimMachine]:
        return iter(self.machines.values())

    def machine(self, subscription: str, group: str, kind: str, name: str) -> SimMachine:
        found = self.machines.get(_key(subscription, group, kind, name))
        if found is not None:
            return found
        if subscription.lower() not in {s.lower() for s in self.fleet.subscriptions}:
            raise ArmError(404, "SubscriptionNotFound",
                           f"The subscription '{subscription}' could not be found.")
        groups = {m.spec.resource_group.lower() for m in self.machines.values()
                  if m.spec.subscription.lower() == subscription.lower()}
        if group.lower() not in groups:
            raise ArmError(404, "ResourceGroupNotFound",
                           f"Resource group '{group}' could not be found.")
        provider = ("Microsoft.Compute/virtualMachines" if kind == "vm"
                    else "Microsoft.HybridCompute/machines")
        if kind.startswith(SCALE_SET_KIND):
            scale_set = kind[len(SCALE_SET_KIND):]
            provider = f"Microsoft.Compute/virtualMachineScaleSets/{scale_set}/virtualMachines"
        raise ArmError(404, "ResourceNotFound",
                       f"The Resource '{provider}/{name}' under resource group '{group}' was "
                       "not found. For more details please go to "
                       "https://aka.ms/ARMResourceNotFoundFix")

    def machines_in(self, subscription: str, group: str | None, kind: str) -> list[SimMachine]:
        return [m for m in self.machines.values()
                if m.spec.kind == kind and not m.uniform
                and m.spec.subscription.lower() == subscription.lower()
                and (group is None or m.spec.resource_group.lower() == group.lower())]

    # ------------------------------------------------------------------------ run commands

    def run_commands(self, machine: SimMachine) -> dict[str, RunCommand]:
        return self._run_commands.setdefault(id(machine), {})

    def run_command(self, machine: SimMachine, name: str) -> RunCommand:
        found = self.run_commands(machine).get(name.lower())
        if found is None:
            kind = "virtualMachines" if machine.is_vm else "machines"
            provider = "Microsoft.Compute" if machine.is_vm else "Microsoft.HybridCompute"
            shown = machine.name
            if machine.uniform:
                kind = "virtualMachineScaleSets"
                shown = f"{machine.spec.scale_set}/virtualMachines/{machine.spec.instance_id}"
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource '{provider}/{kind}/{shown}/runCommands/{name}' "
                           f"under resource group '{machine.spec.resource_group}' was not "
                           "found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        return found

    async def put_run_command(
        self, machine: SimMachine, name: str, body: object
    ) -> tuple[bool, RunCommand, Operation | None]:
        """Create or replace a run command. Returns (created, resource, operation or None).

        An identical re-PUT changes nothing and starts nothing (no operation); a changed one
        kills the running script of the same name and starts the new sequence number.
        """
        provider = COMPUTE if machine.is_vm else ARC
        if machine.is_vm and machine.power != "running":
            raise ArmError(409, "OperationNotAllowed",
                           "Cannot modify extensions in the VM when the VM is not running.")
        wanted = parse_put(body, provider, machine, name)
        commands = self.run_commands(machine)
        existing = commands.get(name.lower())
        if existing is not None and existing.spec.settings_equal(wanted):
            return False, existing, None
        if existing is None and machine.is_vm and len(commands) >= MAX_PER_VM:
            raise ArmError(409, "OperationNotAllowed",
                           f"The maximum number of managed Run commands (max={MAX_PER_VM}, "
                           f"current={len(commands)}) has been exceeded. Use "
                           "https://aka.ms/RunCommandManaged to list and delete run commands.")
        seq = 1
        if existing is not None:
            # "Update ... stops the previous run command" (Arc how-to, 02/07/2024 revision);
            # Compute's PATCH comes here too, merged into a PUT body. The docs do not say
            # what the stopped run's instanceView ends as. The handler (run-command-handlers
            # .md 4, "Update") kills the previous seq's process group and then reports only
            # the new seq: the resource has one instanceView, and it becomes the new run's.
            # So the stopped run reports nothing more (stop() silences it), and its blobs are
            # recreated by the new run before its script starts ("overwritten" each run).
            await existing.execution.stop()
            seq = existing.seq + 1
            for operation in self.operations.values():
                if operation.run_command is existing and operation.action == "put":
                    operation.superseded = True
        resource_name = existing.name if existing is not None else name
        command = RunCommand(
            provider=provider,
            machine=machine,
            name=resource_name,
            spec=wanted,
            seq=seq,
            execution=self._execution(machine, resource_name, seq, wanted),
            created=existing.created if existing is not None else datetime.now(UTC),
        )
        commands[name.lower()] = command
        command.execution.start()
        return existing is None, command, self._operation("put", command)

    def patch_run_command(self, machine: SimMachine, name: str, body: object) -> RunCommand:
        """Arc's tags-only PATCH (2024-07-10 and 2025-01-13)."""
        command = self.run_command(machine, name)
        tags = body.get("tags") if isinstance(body, dict) else None
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise ArmError(400, "InvalidRequestContent",
                           "tags: required, an object of string values (PATCH updates tags "
                           "only; use PUT to change a run command)")
        command.spec = replace(command.spec, tags=dict(tags))
        return command

    def merged_patch(self, machine: SimMachine, name: str, body: object) -> dict[str, Any]:
        """Compute's PATCH: the properties given replace those of the current resource."""
        command = self.run_command(machine, name)
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The body must be a JSON object.")
        props = dict(command.spec.properties)
        patch_props = body.get("properties", {})
        if not isinstance(patch_props, dict):
            raise ArmError(400, "InvalidRequestContent", "properties: a JSON object")
        props.update(patch_props)
        return {"location": command.spec.location,
                "tags": body.get("tags", command.spec.tags), "properties": props}

    async def delete_run_command(self, machine: SimMachine, name: str) -> Operation | None:
        """Remove a run command, killing its script; None when there was nothing to delete."""
        failing = self.faults_for(machine).delete_errors
        if failing and self._deletes_failed.get(id(machine), 0) < failing:
            self._deletes_failed[id(machine)] = self._deletes_failed.get(id(machine), 0) + 1
            raise ArmError(500, "InternalServerError", "The delete of the run command failed "
                           "(sandbox fault injection: delete_errors). Please retry the request.")
        command = self.run_commands(machine).pop(name.lower(), None)
        if command is None:
            return None
        operation = self._operation("delete", command)

        async def stop() -> None:
            await command.execution.stop()
            operation.ended = datetime.now(UTC)
            operation.done.set()

        task = asyncio.create_task(stop())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return operation

    def _operation(self, action: str, command: RunCommand) -> Operation:
        spec = command.machine.spec
        operation = Operation(
            id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            action=action,
            provider=command.provider,
            subscription=spec.subscription,
            location=spec.location,
            run_command=command,
            seq=command.seq,
        )
        self.operations[operation.id] = operation
        return operation

    def operation(self, operation_id: str) -> Operation:
        found = self.operations.get(operation_id.lower())
        if found is None:
            raise ArmError(404, "NotFound", f"Operation '{operation_id}' was not found.")
        return found

    def _execution(
        self, machine: SimMachine, name: str, seq: int, wanted: RunCommandInput
    ) -> Execution:
        faults = _merge(self.fleet.faults, machine.spec.faults)
        settings = AgentSettings.of(self.fleet, faults)
        return Execution(
            machine=machine,
            request=run_request(name, seq, wanted.properties),
            settings=settings,
            sinks=self.sinks.open,
            fetch_script=self.sinks.fetch,
            rng=random.Random(self.rng.getrandbits(64)),
        )

    def faults_for(self, machine: SimMachine | None) -> Faults:
        if machine is None:
            return self.fleet.faults
        return _merge(self.fleet.faults, machine.spec.faults)


def _merge(fleet: Faults, machine: Faults) -> Faults:
    """A machine's own faults win field by field over the fleet-wide ones."""
    return machine.over(fleet)


SCALE_SET_KIND = "vmss/"
"""The kind part of a Uniform instance's key: ``vmss/{scale set, lower case}``; its name part
is the instance id. Flexible members are keyed as the VMs they are."""


def scale_set_kind(scale_set: str) -> str:
    return SCALE_SET_KIND + scale_set.lower()


def machine_key(spec: MachineSpec) -> tuple[str, str, str, str]:
    if spec.uniform:
        return _key(spec.subscription, spec.resource_group, scale_set_kind(spec.scale_set),
                    spec.instance_id)
    return _key(spec.subscription, spec.resource_group, spec.kind, spec.name)


def machine_folder(spec: MachineSpec) -> str:
    """The machine's own folder under the sandbox's root: its name, then its key's digest.

    Named after the whole key, not the name alone: machines of one name in two resource
    groups are two machines, and sharing a folder they shared their scripts' output files
    (each start truncates them), so one of them came out with the other's bytes or none.
    """
    digest = hashlib.sha1("/".join(machine_key(spec)).encode(), usedforsecurity=False)
    return f"{spec.name}-{digest.hexdigest()[:8]}"


def _key(subscription: str, group: str, kind: str, name: str) -> tuple[str, str, str, str]:
    return (subscription.lower(), group.lower(), kind, name.lower())

