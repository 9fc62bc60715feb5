"""Managed run commands as data: the PUT body fleetrun sends and the instance view it reads.

Both Microsoft.Compute (``virtualMachines/{vm}/runCommands``) and Microsoft.HybridCompute
(``machines/{m}/runCommands``) take the same properties and report the same instance view
(azure-run-command.md sections 2 and 4), so one module serves both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.azure.blob_urls import redact_sas
from core.errors import FleetrunError
from core.model import Command, RunState

NAME_PREFIX = "fleetrun-"
TERMINAL_EXECUTION = {
    "succeeded": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
    "timedout": RunState.TIMED_OUT,
    "canceled": RunState.CANCELED,
}
TERMINAL_PROVISIONING = frozenset({"succeeded", "failed", "canceled"})
HANDLER_TIMEOUT_EXIT = -1
"""The Linux handler reports a script it killed on timeout as Failed with exit code -1."""


def run_command_name(run_id: str) -> str:
    """The deterministic resource name of a run's command on every machine.

    Deterministic so that ``fleetrun attach`` finds it again after a crash; short enough for
    Arc's 36-character limit on Linux.
    """
    return f"{NAME_PREFIX}{run_id}"


def run_command_path(machine_id: str, run_id: str) -> str:
    """The run command's ARM path under a VM or Arc machine resource id."""
    return f"{machine_id.rstrip('/')}/runCommands/{run_command_name(run_id)}"


@dataclass(frozen=True, slots=True)
class OutputTargets:
    """Where the agent writes the full output: one append blob per stream.

    Attributes:
        output_uri: ``outputBlobUri`` (a SAS URL, or a plain URL with a managed identity).
        error_uri: ``errorBlobUri``.
        identity: None for SAS URLs; ``""`` for the machine's system-assigned identity or a
            client id for a user-assigned one.
    """

    output_uri: str
    error_uri: str
    identity: str | None = None


def put_body(command: Command, location: str, targets: OutputTargets | None,
             source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``PUT .../runCommands/{name}`` body for ``command`` (secrets included: in memory only).

    Unnamed parameters keep ``name: ""``, as the Linux handler expects for positional values.
    ``source`` replaces the inline script (``scriptUri`` for one too big to send inline).
    """
    properties: dict[str, Any] = {
        "source": source if source is not None else {"script": command.script},
        "parameters": [{"name": p.name, "value": p.value} for p in command.public_parameters],
        "protectedParameters": [
            {"name": p.name, "value": p.value} for p in command.protected_parameters
        ],
        "asyncExecution": command.async_execution,
        "timeoutInSeconds": command.timeout,
    }
    if command.run_as_user:
        properties["runAsUser"] = command.run_as_user
    if command.run_as_password:
        properties["runAsPassword"] = command.run_as_password
    if targets is not None:
        properties["outputBlobUri"] = targets.output_uri
        properties["errorBlobUri"] = targets.error_uri
        if targets.identity is not None:
            identity = {"clientId": targets.identity} if targets.identity else {}
            properties["outputBlobManagedIdentity"] = identity
            properties["errorBlobManagedIdentity"] = identity
    return {"location": location, "properties": properties}


class InvalidView(FleetrunError, ValueError):
    """A run command answer without the fields every answer has; names the field."""


@dataclass(frozen=True, slots=True)
class InstanceView:
    """What one GET of a run command says about its run."""

    provisioning_state: str
    execution_state: str
    message: str
    exit_code: int | None
    output: str
    error: str
    started: datetime | None
    ended: datetime | None
    provisioning_error: str = ""

    @classmethod
    def parse(cls, body: Any) -> InstanceView:
        """Read a run command resource; missing optional parts become empty values.

        Raises:
            InvalidView: The body is not a run command resource.
        """
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise InvalidView("run command answer: 'properties' is missing or not an object")
        props: dict[str, Any] = body["properties"]
        view = props.get("instanceView")
        view = view if isinstance(view, dict) else {}
        exit_code = view.get("exitCode")
        error = props.get("error") if isinstance(props.get("error"), dict) else None
        return cls(
            provisioning_state=str(props.get("provisioningState") or ""),
            execution_state=str(view.get("executionState") or "Unknown"),
            message=redact_sas(str(view.get("executionMessage") or "")),
            exit_code=exit_code if isinstance(exit_code, int) else None,
            output=str(view.get("output") or ""),
            error=str(view.get("error") or ""),
            started=_timestamp(view.get("startTime")),
            ended=_timestamp(view.get("endTime")),
            provisioning_error=redact_sas(f"{error.get('code', '')}: {error.get('message', '')}")
            if error else "",
        )

    @property
    def running(self) -> bool:
        return self.execution_state.lower() == "running"

    @property
    def terminal(self) -> bool:
        """Whether the run is over: a terminal execution state that provisioning agrees with.

        A failed provisioning with no execution state (the agent never took the command)
        is terminal too.
        """
        execution = self.execution_state.lower()
        provisioning = self.provisioning_state.lower()
        if execution in TERMINAL_EXECUTION:
            return provisioning in TERMINAL_PROVISIONING or provisioning == ""
        return provisioning in ("failed", "canceled")

    def outcome(self, timeout: int, elapsed: float) -> tuple[RunState, str]:
        """The terminal RunState and the reason to show, with handler timeouts as TimedOut.

        Args:
            timeout: The command's ``timeoutInSeconds`` (0 = none).
            elapsed: Seconds between the run's start and its end, as far as the client knows.
        """
        state = TERMINAL_EXECUTION.get(self.execution_state.lower())
        if state is None:
            reason = self.provisioning_error or self.message or (
                f"provisioning {self.provisioning_state.lower()}")
            return RunState.FAILED, reason
        if state is RunState.SUCCEEDED:
            return state, ""
        if (state is RunState.FAILED and self.exit_code == HANDLER_TIMEOUT_EXIT
                and timeout > 0 and elapsed >= timeout - 1):
            return RunState.TIMED_OUT, (
                f"timed out after {timeout} s: the agent killed the script "
                f"(reported as Failed, exit -1: {self.message})")
        if state is RunState.TIMED_OUT:
            return state, self.message or f"timed out after {timeout} s"
        return state, self.message or self.provisioning_error


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
