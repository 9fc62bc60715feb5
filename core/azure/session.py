"""What the Azure backends share for one fleet: the ARM client, blob access, and settings.

One :class:`AzureSession` serves every VM and Arc machine of a fleet, so all of them draw on
the same throttle budget and connection pool.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from core.azure.arm import ArmClient
from core.azure.blob import AppendBlobClient, blob_url
from core.azure.run_commands import OutputTargets, run_command_name
from core.model import Machine, Stream


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
    """

    url: str
    identity: str | None = None

    def targets(self, run_id: str, machine: Machine) -> OutputTargets:
        folder = f"{run_command_name(run_id)}/{blob_folder(machine)}"
        return OutputTargets(
            output_uri=blob_url(self.url, f"{folder}/{Stream.STDOUT.value}.txt"),
            error_uri=blob_url(self.url, f"{folder}/{Stream.STDERR.value}.txt"),
            identity=self.identity,
        )


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

    async def aclose(self) -> None:
        await self.arm.aclose()
