"""Simulated machines: identity and agent health, as the ARM resources report them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from core.model import OsType
from core.sandbox.fleet import MachineSpec
from core.sandbox.names import is_safe_name
from core.sandbox.stand_in import TAG, stand_in_reason
from core.scale_set_names import uniform_computer_name

MIN_ARC_AGENT = (1, 33)
"""Run commands are built into the Connected Machine agent from 1.33 on."""

VM_AGENT_VERSION = "2.7.41491.1102"
LINUX_HANDLER = "Microsoft.CPlat.Core.RunCommandHandlerLinux"
WINDOWS_HANDLER = "Microsoft.CPlat.Core.RunCommandHandlerWindows"


def agent_version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        if not piece.isdigit():
            break
        parts.append(int(piece))
    return tuple(parts)


@dataclass(eq=False)
class SimMachine:
    """One VM or Arc server and its agent's current condition.

    Health can change while the sandbox runs (the ``disconnect_after`` fault), so it lives
    here as mutable state rather than in the spec.
    """

    spec: MachineSpec
    root: Path
    """This machine's private directory: run directories and its HOME live below it."""
    agent_ready: bool = True
    power: str = "running"
    arc_status: str = "connected"
    last_status_change: datetime = field(default_factory=lambda: datetime.now(UTC))
    vm_id: str = ""
    stand_in: str = ""
    """Why its scripts are played by a stand-in (``auto`` and no pwsh), else ''."""

    def __post_init__(self) -> None:
        self.stand_in = stand_in_reason(self.spec)
        if self.stand_in:
            # A tag is what ARM and Resource Graph show of a machine's own facts: the client's
            # machine details show it without knowing anything of the sandbox.
            self.spec = replace(self.spec, tags={**self.spec.tags, TAG: self.stand_in})
        self.agent_ready = self.spec.agent == "ready"
        self.power = self.spec.power
        self.arc_status = self.spec.status
        seed = f"{self.spec.subscription}/{self.spec.resource_group}/{self.spec.name}".lower()
        self.vm_id = str(uuid.uuid5(uuid.NAMESPACE_URL, seed))

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_vm(self) -> bool:
        return self.spec.kind == "vm"

    @property
    def windows(self) -> bool:
        return self.spec.os == "windows"

    @property
    def uniform(self) -> bool:
        """An instance of a Uniform scale set (a child resource of the set, not a VM)."""
        return self.spec.uniform

    @property
    def computer_name(self) -> str:
        """The guest's host name: a Uniform instance's is the set's name and its instance id
        in 6 base-36 digits (``web000000``), as Azure derives it from computerNamePrefix; a
        Windows name is cut to NetBIOS's 15 characters."""
        if self.uniform:
            os_type = OsType.WINDOWS if self.windows else OsType.LINUX
            return uniform_computer_name(self.spec.scale_set, int(self.spec.instance_id),
                                         os_type)
        return self.name[:15] if self.windows else self.name

    @property
    def scale_set_id(self) -> str:
        """The id of the scale set this VM belongs to, or ''."""
        spec = self.spec
        if not spec.scale_set:
            return ""
        return (f"/subscriptions/{spec.subscription}/resourceGroups/{spec.resource_group}"
                f"/providers/Microsoft.Compute/virtualMachineScaleSets/{spec.scale_set}")

    @property
    def resource_id(self) -> str:
        spec = self.spec
        if self.uniform:
            return f"{self.scale_set_id}/virtualMachines/{spec.instance_id}"
        provider = "Microsoft.Compute/virtualMachines"
        if not self.is_vm:
            provider = "Microsoft.HybridCompute/machines"
        return (
            f"/subscriptions/{spec.subscription}/resourceGroups/{spec.resource_group}"
            f"/providers/{provider}/{spec.name}"
        )

    @property
    def agent_supports_run_commands(self) -> bool:
        if self.is_vm:
            return True
        version = agent_version_tuple(self.spec.agent_version)
        return not version or version >= MIN_ARC_AGENT

    @property
    def handler(self) -> str:
        """Run Command's extension on this machine, ``Publisher.Type`` as Azure names it."""
        return WINDOWS_HANDLER if self.windows else LINUX_HANDLER

    @property
    def local_block(self) -> str:
        """Which ``azcmagent config`` setting refuses Run Command's handler on this Arc
        machine ('' for none): monitor mode blocks script-running extensions, and the
        lists (``Publisher/Type``, any case) block what they name or leave out
        (run-command-handlers.md 6)."""
        spec = self.spec
        if self.is_vm:
            return ""
        publisher, _, kind = self.handler.lower().rpartition(".")
        name = f"{publisher}/{kind}"
        if spec.config_mode == "monitor":
            return "config.mode monitor"
        if not spec.extensions_enabled:
            return "extensions.enabled false"
        if name in (entry.lower() for entry in spec.extensions_blocklist):
            return "extensions.blocklist"
        allowed = [entry.lower() for entry in spec.extensions_allowlist]
        if allowed and name not in allowed:
            return "extensions.allowlist"
        return ""

    @property
    def can_run(self) -> bool:
        """Whether the agent would pick up a new run command now."""
        if self.is_vm:
            return self.agent_ready and self.power == "running"
        return self.arc_status == "connected" and self.agent_supports_run_commands

    def disconnect(self) -> None:
        """The agent drops off: VM agent Not Ready, Arc machine Disconnected."""
        if self.is_vm:
            self.agent_ready = False
        else:
            self.arc_status = "disconnected"
        self.last_status_change = datetime.now(UTC)

    def run_dir(self, run_command: str, seq: int) -> Path:
        # The ARM gate refuses such names; checked again here because the directory's
        # parent is emptied on every run.
        if not is_safe_name(run_command):
            raise ValueError(f"run command name {run_command!r} cannot name a directory")
        return self.root / "download" / run_command / str(seq)

    @property
    def home(self) -> Path:
        return self.root / "home"
