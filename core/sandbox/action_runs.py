"""The action Run Command API (``POST .../virtualMachines/{vm}/runCommand``), reference 3 and
azure-storage-and-scale-sets.md 7.

What ``az vm run-command invoke`` and ``Invoke-AzVMRunCommand`` call: no resource is kept, the
answer is a long-running operation (202 with ``Location`` and ``Azure-AsyncOperation``) whose
final result is a ``RunCommandResult``. Its rules are the action handlers' own: one run at a
time per VM (409 ``Conflict`` while one runs), a 90-minute cap, no blobs, only the last 4,096
bytes of each stream, and ``succeeded`` whatever the script's exit code. The script runs
through the same agent and executors as a managed run command (simulated, bash or pwsh per
machine), so the machine's health (agent Not Ready, deallocated) counts as it does there.
"""

from __future__ import annotations

import random
import shlex
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from core.sandbox.agent import AgentSettings, Execution, RunRequest, failed_message
from core.sandbox.blob_sink import BlobSinks
from core.sandbox.builtin_commands import (
    BuiltinCommand,
    builtin,
)
from core.sandbox.errors import ArmError
from core.sandbox.fleet import Faults, FleetSpec
from core.sandbox.machines import SimMachine

ACTION_CAP = timedelta(minutes=90)
"""The action API's hard limit: the script is killed and the operation fails after it."""
CONFLICT_MESSAGE = ("Run command extension execution is in progress. Please wait for "
                    "completion before invoking a run command.")
NOT_FOUND_MESSAGE = "The entity was not found in this Azure location."
_RUN_NAME = "action"
"""The run directory's name below the machine: the v1 handler is single-config."""


@dataclass(frozen=True, slots=True)
class ActionInput:
    """A checked ``RunCommandInput``."""

    command: BuiltinCommand
    script: tuple[str, ...]
    parameters: tuple[tuple[str, str], ...]


def parse_input(body: object, machine: SimMachine) -> ActionInput:
    """The POST body, checked: ``commandId`` (required, a built-in of the VM's OS), ``script``
    (lines) and ``parameters`` (``[{name, value}]``)."""
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The body must be a JSON object "
                       "(RunCommandInput: commandId, script, parameters).")
    command_id = body.get("commandId")
    if not isinstance(command_id, str) or not command_id:
        raise ArmError(400, "InvalidParameter", "commandId: required, a run command id such "
                       "as RunShellScript or RunPowerShellScript.", )
    command = builtin(command_id)
    if command is None:
        raise ArmError(404, "NotFound", NOT_FOUND_MESSAGE)
    if command.windows != machine.windows:
        # The reference gives no answer for a built-in of the other OS; the sandbox refuses it
        # plainly rather than run a PowerShell script through bash.
        vm_os = "Windows" if machine.windows else "Linux"
        raise ArmError(400, "InvalidParameter", f"The run command '{command.id}' is for "
                       f"{command.os_type} machines; VM '{machine.name}' runs {vm_os}.")
    script = body.get("script")
    if script is not None and (not isinstance(script, list)
                               or not all(isinstance(line, str) for line in script)):
        raise ArmError(400, "InvalidParameter", "script: an array of strings (the lines)")
    raw = body.get("parameters") or []
    if not isinstance(raw, list):
        raise ArmError(400, "InvalidParameter", "parameters: an array of {name, value}")
    given: list[tuple[str, str]] = []
    for index, item in enumerate(raw):
        if (not isinstance(item, dict) or not isinstance(item.get("name"), str)
                or not isinstance(item.get("value"), str)):
            raise ArmError(400, "InvalidParameter", f"parameters[{index}]: an object with "
                           "string 'name' and 'value' (both required)")
        given.append((item["name"], item["value"]))
    if script:
        return ActionInput(command, tuple(script), tuple(given))
    # The document's own script runs with its defaults for what the caller left out: the
    # list example answers "... parameters value1 value2" to a bare RunPowerShellScript.
    names = {name.lower() for name, _ in given}
    defaults = [(n, v) for n, v in command.defaults() if n.lower() not in names]
    return ActionInput(command, command.script, (*given, *defaults))


def script_text(wanted: ActionInput, windows: bool) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The script file's text and the parameters the executor passes, as the v1 handlers get
    them: on Linux the service prepends ``export n=v ...`` and ``set -- v ...`` (each value is
    an environment variable and a positional argument; bare values are dropped); on Windows
    the values go to the ``.ps1`` as ``-name value``."""
    body = "\n".join(wanted.script) + "\n"
    if windows:
        return body, wanted.parameters
    named = [(n, v) for n, v in wanted.parameters if n]
    prefix = ""
    if named:
        # How the service quotes the values is unconfirmed; quoted here, so a value is data.
        prefix = ("export " + " ".join(f"{n}={shlex.quote(v)}" for n, v in named) + "\n"
                  + "set -- " + " ".join(shlex.quote(v) for _, v in named) + "\n")
    return prefix + body, ()


def _last_4096(text: str) -> str:
    return text.encode("utf-8")[-4096:].decode("utf-8", errors="replace")


@dataclass(eq=False)
class ActionRun:
    """One POST: its operation id, the machine and the execution carrying the script out."""

    id: str
    machine: SimMachine
    command_id: str
    execution: Execution
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None

    @property
    def subscription(self) -> str:
        return self.machine.spec.subscription

    @property
    def location(self) -> str:
        return self.machine.spec.location

    @property
    def capped(self) -> bool:
        """Still unfinished after 90 minutes (a stuck agent, a script killed at the cap)."""
        return datetime.now(UTC) - self.started >= ACTION_CAP

    @property
    def status(self) -> str:
        execution = self.execution
        if execution.agent_error is not None or self.capped or self._handler_failure():
            self._end()
            return "Failed"
        if execution.finished:
            self._end()
            return "Succeeded"
        return "InProgress"

    def _end(self) -> None:
        if self.ended is None:
            self.ended = datetime.now(UTC)

    def _handler_failure(self) -> str | None:
        """The reason the script never ran (no pwsh, no directory...), if that is how it
        ended; a script that ran and exited non-zero still 'succeeded' (reference 7.2)."""
        view = self.execution.view
        if not self.execution.finished or view.execution_state == "Succeeded":
            return None
        if view.execution_message == failed_message(view.exit_code):
            return None
        return view.execution_message

    @property
    def error(self) -> dict[str, str] | None:
        if self.status != "Failed":
            return None
        agent_error = self.execution.agent_error
        if agent_error is not None:
            return {"code": agent_error[0], "message": agent_error[1]}
        handler = "RunCommandWindows" if self.machine.windows else "RunCommandLinux"
        if self.capped and not self.execution.finished:
            # Reference 3.3: "after 90 minutes the script will time out"; code unconfirmed.
            return {"code": "VMExtensionProvisioningTimeout",
                    "message": f"Run command on VM '{self.machine.name}' did not finish within "
                    "90 minutes, the action run command's limit."}
        return {"code": "VMExtensionProvisioningError",
                "message": f"VM has reported a failure when processing extension '{handler}'. "
                f"Error message: \"{self._handler_failure() or 'Execution timed out'}\""}

    @property
    def running(self) -> bool:
        return self.status == "InProgress"

    def result(self) -> dict[str, Any]:
        """The ``RunCommandResult``: Windows has a StdOut and a StdErr ``ComponentStatus``;
        Linux one ``ProvisioningState/succeeded`` with ``[stdout]``/``[stderr]`` sections
        (azure-storage-and-scale-sets.md 7.2); each stream its last 4,096 bytes."""
        view = self.execution.view
        out, err = _last_4096(view.output), _last_4096(view.error)
        if self.machine.windows:
            return {"value": [_status("ComponentStatus/StdOut/succeeded", out),
                              _status("ComponentStatus/StdErr/succeeded", err)]}
        message = f"Enable succeeded: \n[stdout]\n{out}\n[stderr]\n{err}"
        return {"value": [_status("ProvisioningState/succeeded", message)]}

    def operation_status(self) -> dict[str, Any]:
        status = self.status
        body: dict[str, Any] = {"name": self.id, "status": status,
                                "startTime": self.started.isoformat()}
        if status == "InProgress":
            return body
        body["endTime"] = (self.ended or self.started).isoformat()
        error = self.error
        if error is not None:
            body["error"] = error
        else:  # what CLI debug logs show (Azure/azure-cli#32286)
            body["properties"] = {"output": self.result()}
        return body


def _status(code: str, message: str) -> dict[str, str]:
    return {"code": code, "level": "Info", "displayStatus": "Provisioning succeeded",
            "message": message}


class ActionRuns:
    """Every action run the sandbox has started, by operation id, and who is busy."""

    def __init__(self, fleet: FleetSpec, sinks: BlobSinks, rng: random.Random) -> None:
        self._fleet = fleet
        self._sinks = sinks
        self._rng = rng
        self._runs: dict[str, ActionRun] = {}
        self._latest: dict[int, ActionRun] = {}

    def get(self, operation_id: str) -> ActionRun | None:
        return self._runs.get(operation_id.lower())

    async def start(self, machine: SimMachine, body: object, faults: Faults) -> ActionRun:
        """Check and start one POST; raises the ``ArmError`` Azure would answer instead."""
        if machine.power != "running":
            # The sandbox's managed PUT answers a stopped VM so; the action API installs
            # the same kind of extension.
            raise ArmError(409, "OperationNotAllowed",
                           "Cannot modify extensions in the VM when the VM is not running.")
        wanted = parse_input(body, machine)
        previous = self._latest.get(id(machine))
        if previous is not None and previous.running:
            raise ArmError(409, "Conflict", CONFLICT_MESSAGE)
        if previous is not None and not previous.execution.finished:
            # Capped (or failed) while its script may still run: it goes now.
            await previous.execution.stop()
        run = ActionRun(
            id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            machine=machine,
            command_id=wanted.command.id,
            execution=self._execution(machine, wanted, faults),
        )
        self._runs[run.id] = run
        self._latest[id(machine)] = run
        run.execution.start()
        return run

    def _execution(self, machine: SimMachine, wanted: ActionInput, faults: Faults) -> Execution:
        text, parameters = script_text(wanted, machine.windows)
        seq = sum(1 for r in self._runs.values() if r.machine is machine) + 1
        settings = AgentSettings.of(self._fleet, faults)
        request = RunRequest(name=_RUN_NAME, seq=seq, script=text, script_uri="",
                             parameters=parameters,
                             timeout=int(ACTION_CAP.total_seconds()), run_as_user="",
                             output_blob_uri="", error_blob_uri="")
        return Execution(machine=machine, request=request, settings=settings,
                         sinks=self._sinks.open, fetch_script=self._sinks.fetch,
                         rng=random.Random(self._rng.getrandbits(64)))

    async def aclose(self) -> None:
        for run in self._runs.values():
            await run.execution.stop()
