"""The backend contract every way of reaching a machine implements."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from core.backends.host_keys import HostKeyProblem
from core.events import MachineEvent
from core.model import Command, Health, Machine, MachineId

if TYPE_CHECKING:
    from core.host_key_scan import HostScan


@runtime_checkable
class Backend(Protocol):
    """Runs commands on machines of one kind.

    ``run`` yields a machine's events as they happen: ``StateChanged`` (Running first),
    ``OutputAppended`` for every byte of both streams in order, ``TailUpdated`` whenever the
    reported 4 KB tail changes (at least once before the end), and exactly one ``Finished``
    last. Cancelling the task iterating ``run`` must stop the remote process; ``cancel``
    does the same from outside and is safe to call at any time, more than once.
    """

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]: ...

    def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]: ...

    async def cancel(self, machine: Machine, run_id: str) -> None: ...


class IfMissing(enum.StrEnum):
    """What ``attach`` does when the service has no run for a machine.

    The journal tells the two cases apart: a machine it saw start (or holds output of) had
    its run on the service, so the run is gone; one it did not see start was, for all it
    knows, never sent (the process died before or during its request).
    """

    SUBMIT = "submit"
    """Never sent: send it now, as ``run`` would."""
    REPORT = "report"
    """Never sent, and the user asked not to send anything (NotStarted, saying so)."""
    RAN = "ran"
    """It had started: the run was deleted before its result was read (Failed, saying so)."""


@runtime_checkable
class ReattachableBackend(Backend, Protocol):
    """A backend whose runs outlive fleetrun (a service keeps them): it can follow one again.

    ``attach`` yields the same events as ``run`` for a run that was started earlier (by a
    process that has since died). Output comes again from its start; the output store skips
    what it already holds. A run the service does not have is handled as ``if_missing``
    says: only :attr:`IfMissing.SUBMIT` starts anything.
    """

    def attach(
        self, machine: Machine, command: Command, *, run_id: str,
        if_missing: IfMissing = IfMissing.REPORT,
    ) -> AsyncIterator[MachineEvent]: ...


@runtime_checkable
class RunCheckedBackend(Backend, Protocol):
    """A backend whose run itself tells a machine that cannot run scripts, with its reason.

    Before a run it only checks that it reaches each machine (``check_reachable``: for SSH,
    connect and log in, the connection the run then uses), sparing the per-machine probe
    that ``check_health``, which a person reads in a machine list, still makes.
    """

    async def check_reachable(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        ...


@runtime_checkable
class HostKeyCheckingBackend(Backend, Protocol):
    """A backend that refuses hosts whose keys its trusted-keys file does not vouch for.

    The user reviews such keys (a front end asks this protocol, never a concrete backend):
    an unknown key may be trusted, which records it; a changed key never is.
    """

    @property
    def known_hosts_path(self) -> Path:
        """The file trusted keys are checked against and recorded in."""
        ...

    def pending_host_keys(self) -> list[HostKeyProblem]:
        """Unknown host keys refused so far, for the user to review in one batch."""
        ...

    def host_key_problems(self) -> dict[MachineId, HostKeyProblem]:
        """Each machine whose last connection attempt was refused for its host key, and why."""
        ...

    def trust_host_keys(self, problems: list[HostKeyProblem]) -> None:
        """Record reviewed unknown keys as trusted (a file write: call it off the event loop);
        later connections to their hosts pass. Changed keys among them are ignored.

        Raises:
            OSError: the trusted-keys file could not be written.
        """
        ...

    def host_key_warnings(self) -> list[str]:
        """One line per host whose key was let through only because its config says not to
        check strictly (ssh's StrictHostKeyChecking no): the user must hear of each."""
        ...


@runtime_checkable
class HostKeyScanningBackend(HostKeyCheckingBackend, Protocol):
    """A host-key checking backend that can also collect its hosts' keys without logging
    in (``fleetrun hostkeys scan``), for review before any are trusted."""

    async def scan_host_keys(self, machine: Machine) -> HostScan:
        """The keys the machine's host presents, judged against the trusted-keys file, or
        why it could not be asked (in the result, not raised). Writes nothing."""
        ...

    async def trust_scanned_keys(self, machine: Machine, problems: list[HostKeyProblem]
                                 ) -> None:
        """Record keys a scan of ``machine`` showed (and the user reviewed) in the
        trusted-keys file that machine's connections read; changed keys are ignored.

        Raises:
            OSError: the trusted-keys file could not be written.
        """
        ...
