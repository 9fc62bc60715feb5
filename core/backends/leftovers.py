"""fleetrun's own run commands on a VM or Arc server: listed, and deleted until gone.

A VM holds at most 25 managed run commands (reference section 2.6), so one that fleetrun
left behind (a crash, an outage during its DELETE) takes a slot for good. The backend
deletes each run command when its run ends (:func:`delete_until_gone`); ``fleetrun cleanup``
lists what is left on a fleet (:func:`list_run_commands`) and deletes it the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from core.azure.arm import ArmClient, ArmError
from core.azure.budget import Priority
from core.azure.run_commands import NAME_PREFIX, InstanceView, InvalidView
from core.model import Machine

log = logging.getLogger(__name__)

GONE = 404
MAX_PAGES = 100
"""A machine holds 25 run commands: more pages than this is a server looping its nextLink."""


@dataclass(frozen=True, slots=True)
class RunCommandFound:
    """One of fleetrun's run commands on a machine, as the list answer shows it."""

    name: str
    run_id: str
    execution_state: str
    """The instance view's ExecutionState (``Unknown`` when the answer has none)."""
    ended: datetime | None
    finished: bool
    """Whether its run is over: deleting it stops nothing."""


@runtime_checkable
class LeftoverCleaningBackend(Protocol):
    """A backend whose runs leave resources on the machine that it can list and delete."""

    async def leftovers(self, machine: Machine) -> list[RunCommandFound]:
        """fleetrun's run commands still on ``machine``.

        Raises:
            ServiceError: they could not be listed.
        """
        ...

    async def remove_leftover(self, machine: Machine, name: str) -> None:
        """Delete one of them (already gone counts as deleted).

        Raises:
            ServiceError: it could not be deleted.
        """
        ...

    async def remove_run(self, machine: Machine, run_id: str) -> None:
        """Delete run ``run_id``'s run command on ``machine`` (already gone counts as deleted).

        Raises:
            ServiceError: it could not be deleted.
        """
        ...


def _found(body: Any) -> RunCommandFound | None:
    """The list entry as one of ours, or None (another tool's, or not a run command)."""
    if not isinstance(body, dict):
        return None
    name = body.get("name")
    if not isinstance(name, str) or not name.lower().startswith(NAME_PREFIX):
        return None
    try:
        view = InstanceView.parse(body)
    except InvalidView:
        return RunCommandFound(name, name[len(NAME_PREFIX):], "Unknown", None, False)
    return RunCommandFound(name, name[len(NAME_PREFIX):], view.execution_state, view.ended,
                           view.terminal)


async def list_run_commands(arm: ArmClient, machine_id: str) -> list[RunCommandFound]:
    """fleetrun's run commands on one machine (``GET {machine}/runCommands``, every page).

    Raises:
        ArmError: the list could not be read.
    """
    path = f"{machine_id.rstrip('/')}/runCommands"
    found: list[RunCommandFound] = []
    params: dict[str, str] | None = {"$expand": "instanceView"}
    for _ in range(MAX_PAGES):
        body = await arm.get(path, params)
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise ArmError(0, "InvalidAnswer", "the run command list has no 'value' array",
                           target=f"GET {path}")
        found += [f for f in map(_found, body["value"]) if f is not None]
        next_link = body.get("nextLink")
        if not isinstance(next_link, str) or not next_link:
            return found
        path, params = next_link, None
    raise ArmError(0, "InvalidAnswer", f"the run command list went on past {MAX_PAGES} pages",
                   target=f"GET {path}")


async def delete_until_gone(arm: ArmClient, path: str, pauses: Sequence[float]) -> None:
    """DELETE a run command, again after each pause while the failure may pass.

    Every try goes through the ARM budget like any other DELETE. A run command that is
    already gone counts as deleted.

    Raises:
        ArmError: the last failure, once the pauses are spent or it cannot pass.
    """
    for attempt in range(len(pauses) + 1):
        try:
            await arm.request("DELETE", path, priority=Priority.CLEANUP)
            return
        except ArmError as error:
            if error.status == GONE:
                return
            if attempt == len(pauses) or not _may_pass(error):
                raise
            log.info("deleting %s failed (%s); again in %g s", path, error, pauses[attempt])
        await asyncio.sleep(pauses[attempt])


def _may_pass(error: ArmError) -> bool:
    """Whether a failed call may succeed later: no answer, a conflict, throttling or 5xx."""
    return error.status in (0, 408, 409, 429) or error.status >= 500
