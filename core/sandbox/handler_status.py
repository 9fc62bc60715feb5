"""The run-command handler's status as a VM's instance view reports it (``extensions[]``).

The managed run-command handler writes one status file per run (``status`` transitioning,
success or error, ``formattedMessage.message`` the run's instanceView as compact JSON with
``endTime`` ``""`` while running; run-command-handlers.md section 3, Linux v2); the guest
agent hands it to Compute, which shows it as the extension's ``statuses[0]``: code
``ProvisioningState/<state>``, ``level`` and ``displayStatus`` as in the spec example
``VirtualMachine_Get_InstanceView.json`` (``ProvisioningState/succeeded``, ``Info``,
``Provisioning succeeded``, and the handler's message).

The handler's state follows the run command's provisioning state, which already encodes the
handler table: transitioning while the script runs (success at once with ``asyncExecution``),
success when it ends, error only under ``treatFailureAsDeploymentFailure`` or when the agent
never took the run. The transitioning and failed codes and display strings
(``ProvisioningState/transitioning`` "Transitioning", ``ProvisioningState/failed/<exit code>``
"Provisioning failed" at level ``Error``) follow the guest agent's usual mapping and are
UNCONFIRMED for run commands.

The run command resource's own ``instanceView.statuses`` stays absent: Compute's and Arc's
spec examples carry none, and a real ``az vm run-command show --instance-view`` showed
``statuses: null`` (azure-run-command.md section 2.3).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from core.sandbox.agent import InstanceView
from core.sandbox.runcommands import RunCommand

Json = dict[str, Any]


def handler_message(view: InstanceView) -> str:
    """The status file's message: the instanceView as the Go handler marshals it."""
    return json.dumps({
        "executionState": view.execution_state,
        "executionMessage": view.execution_message,
        "output": view.output,
        "error": view.error,
        "exitCode": view.exit_code,
        "startTime": _rfc3339(view.start_time),
        "endTime": _rfc3339(view.end_time),
    }, separators=(",", ":"), ensure_ascii=False)


def handler_status(command: RunCommand) -> Json:
    """The ``InstanceViewStatus`` of ``command``'s extension in the VM's instance view."""
    execution = command.execution
    state = command.provisioning_state
    if state == "Succeeded":
        status: Json = {"code": "ProvisioningState/succeeded", "level": "Info",
                        "displayStatus": "Provisioning succeeded"}
    elif state == "Failed":
        code = execution.view.exit_code if execution.agent_error is None else -1
        status = {"code": f"ProvisioningState/failed/{code}", "level": "Error",
                  "displayStatus": "Provisioning failed"}
    else:
        status = {"code": "ProvisioningState/transitioning", "level": "Info",
                  "displayStatus": "Transitioning"}
    if execution.agent_error is not None:
        status["message"] = execution.agent_error[1]
    elif execution.started:
        status["message"] = handler_message(execution.view)
    return status


def _rfc3339(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
