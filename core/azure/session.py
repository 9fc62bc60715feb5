"""What the Azure backends share for one fleet: the ARM client, blob access, and settings.

One :class:`AzureSession` serves every VM and Arc machine of a fleet, so all of them draw on
the same throttle budget and connection pool.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.azure.arm import ArmClient
from core.azure.blob import AppendBlobClient, blob_url
from core.azure.permission_check import PermissionCheck
from core.azure.run_commands import OutputTargets, run_command_name
from core.model import Command, Machine, MachineKind, OsType, Stream

if TYPE_CHECKING:
    from core.azure.delegated_output import DelegatedOutput


@dataclass(frozen=True, slots=True)
class Pacing:
    """How often one machine's run is looked at, when the budgets allow.

    Attributes:
        poll_interval: Seconds between instance-view GETs of one running machine. With many
            machines the ARM read budget stretches this (the reads queue in FIFO order).
        blob_interval: Seconds between reads of one output blob at most: the agent's
            flush interval (Linux's handler uploads every 15 s), since a read sooner finds
            nothing new. Idle blobs are read less often still (see
            ``core.backends.blob_output``); the read after the run's end is not held back.
        drain_grace: Seconds to keep reading the blobs after the run ended, until they hold
            what the instance view's tail shows.
        health_check_limit: Up to this many machines get a per-machine agent check (one
            ARM read each) before a run; larger selections rely on the inventory.
        stall_after: Seconds without any change in a run's instance view after which its
            machine's agent is checked (one ARM read), and again every as many seconds: a
            machine whose agent went away is found within this plus one poll.
        delete_retry_pauses: Pauses before each new try of a run command DELETE that
            failed (about a minute in all), so no run command is left behind by an outage.
    """

    poll_interval: float = 5.0
    blob_interval: float = 15.0
    drain_grace: float = 30.0
    health_check_limit: int = 64
    stall_after: float = 30.0
    delete_retry_pauses: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass(frozen=True, slots=True)
class OutputContainer:
    """Where run commands write their full output.

    Attributes:
        url: A container SAS URL (read, add, create, write), or a plain container URL when
            ``identity`` is set.
        identity: None to use the SAS; ``""`` for each machine's system-assigned identity or
            a user-assigned identity's client id.
        delegated: In ``output_mode = "user-delegation"``: signs each run's per-blob SAS
            (when no identity writes) and uploads scripts; ``url`` is then a plain URL.
    """

    url: str
    identity: str | None = None
    delegated: DelegatedOutput | None = None

    @property
    def uploads_scripts(self) -> bool:
        """Whether a script too big to send inline can be uploaded and passed by URI."""
        return self.delegated is not None

    async def script_source(self, run_id: str, command: Command, timeout_seconds: int, *,
                            arc: bool) -> dict[str, Any]:
        """``source`` for a script passed by URI: uploaded once per run and OS as
        ``scripts/<run id>.sh|.ps1``; a read SAS, or ``scriptUriManagedIdentity`` with the
        machines' identity (not on Arc, which has no managed identity for blobs).
        Protected parameters are not in the script: they stay in ``protectedParameters``.

        Raises:
            BlobError: Storage refused the key or the upload.
            RuntimeError: Output storage is not in user-delegation mode (no uploads).
        """
        if self.delegated is None:
            raise RuntimeError("scripts are uploaded only with output_mode user-delegation")
        windows = command.command_id.os is OsType.WINDOWS
        name = f"scripts/{run_id}.{'ps1' if windows else 'sh'}"
        await self.delegated.upload(name, command.script.encode("utf-8"),
                                    "text/plain; charset=utf-8")
        if self.identity is not None and not arc:
            identity = {"clientId": self.identity} if self.identity else {}
            return {"scriptUri": self.delegated.plain_url(name),
                    "scriptUriManagedIdentity": identity}
        await self.delegated.prepare(run_id, timeout_seconds)
        return {"scriptUri": self.delegated.url(run_id, name, write=False)}

    @property
    def read_with_token(self) -> bool:
        """Whether fleetrun reads the blobs with its Entra token (plain URLs), not a SAS."""
        return self.identity is not None or self.delegated is not None

    def _signs_for(self, machine: Machine) -> bool:
        """Whether ``machine``'s blobs get per-blob SAS: in user-delegation mode, unless an
        identity writes them. Arc servers cannot write blobs as a managed identity
        (reference azure-storage-and-scale-sets.md section 3), so they get SAS there too."""
        return self.delegated is not None and (
            self.identity is None or machine.kind is MachineKind.ARC)

    async def prepare(self, run_id: str, timeout_seconds: int, machine: Machine) -> None:
        """What :meth:`targets` needs first for ``machine``: the run's user-delegation key,
        when its blobs get SAS signed per blob (fetched once per run).

        Raises:
            BlobError: Storage refused the key (the message names the missing action).
        """
        if self.delegated is not None and self._signs_for(machine):
            await self.delegated.prepare(run_id, timeout_seconds)

    def targets(self, run_id: str, machine: Machine) -> OutputTargets:
        """The blob URLs a machine's run command is given (after :meth:`prepare`)."""
        names = self._names(run_id, machine)
        if self.delegated is not None and self._signs_for(machine):
            return OutputTargets(
                output_uri=self.delegated.url(run_id, names[Stream.STDOUT], write=True),
                error_uri=self.delegated.url(run_id, names[Stream.STDERR], write=True))
        return OutputTargets(
            output_uri=self._plain(names[Stream.STDOUT]),
            error_uri=self._plain(names[Stream.STDERR]),
            identity=self.identity,
        )

    def read_urls(self, run_id: str, machine: Machine) -> dict[Stream, str]:
        """The URLs fleetrun reads a machine's blobs at: plain when it reads with its token
        (no SAS needed, none kept), else the container SAS's."""
        return {stream: self._plain(name) for stream, name in
                self._names(run_id, machine).items()}

    def _plain(self, blob_name: str) -> str:
        if self.delegated is not None:
            return self.delegated.plain_url(blob_name)
        return blob_url(self.url, blob_name)

    @staticmethod
    def _names(run_id: str, machine: Machine) -> dict[Stream, str]:
        folder = f"{run_command_name(run_id)}/{blob_folder(machine)}"
        return {stream: f"{folder}/{stream.value}.txt"
                for stream in (Stream.STDOUT, Stream.STDERR)}


def blob_folder(machine: Machine) -> str:
    """A blob folder unique per machine: its name, and a hash of its id (names repeat
    across resource groups and subscriptions)."""
    digest = hashlib.sha256(machine.id.lower().encode()).hexdigest()[:10]
    # A scale set instance's name (queue-ss/0) would make a folder of its own.
    return f"{machine.name.replace('/', '_')}-{digest}"


@dataclass
class AzureSession:
    """The clients and settings behind the Compute and Arc backends of one fleet."""

    arm: ArmClient
    blobs: AppendBlobClient | None = None
    output: OutputContainer | None = None
    pacing: Pacing = field(default_factory=Pacing)
    delete_finished: bool = True
    """Delete each machine's run command once its result is in (a VM holds at most 25)."""
    permissions: PermissionCheck = field(init=False, repr=False)
    """What the caller may do, read once per resource group for the session."""

    def __post_init__(self) -> None:
        self.permissions = PermissionCheck(self.arm)

    async def aclose(self) -> None:
        await self.arm.aclose()
