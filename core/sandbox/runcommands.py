"""Managed run command resources: request checks, state and JSON, for Compute and Arc.

One class serves both providers; where they differ (resource type spelling, whether
``instanceView`` needs ``$expand``, ``treatFailureAsDeploymentFailure``, whether
``protectedParameters`` is echoed as ``[]``) the ``provider`` says which rules apply.
Secrets (``runAsPassword``, protected values) are kept in memory for the run and never
rendered.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.sandbox.agent import Execution, RunRequest
from core.sandbox.errors import ArmError
from core.sandbox.identities import parse_identity
from core.sandbox.machines import SimMachine

COMPUTE = "compute"
ARC = "arc"
MAX_PER_VM = 25
ARC_LINUX_NAME_LIMIT = 36

_SOURCE_KEYS = {
    COMPUTE: {"script", "scriptUri", "commandId", "scriptUriManagedIdentity", "scriptShell",
              "galleryScriptReferenceId"},
    ARC: {"script", "scriptUri", "commandId", "scriptUriManagedIdentity"},
}
_PROPERTY_KEYS = {
    COMPUTE: {"source", "parameters", "protectedParameters", "asyncExecution", "runAsUser",
              "runAsPassword", "timeoutInSeconds", "outputBlobUri", "errorBlobUri",
              "outputBlobManagedIdentity", "errorBlobManagedIdentity",
              "treatFailureAsDeploymentFailure", "provisioningState", "instanceView"},
    ARC: {"source", "parameters", "protectedParameters", "asyncExecution", "runAsUser",
          "runAsPassword", "timeoutInSeconds", "outputBlobUri", "errorBlobUri",
          "outputBlobManagedIdentity", "errorBlobManagedIdentity", "provisioningState",
          "instanceView"},
}
_SECRET_KEYS = ("runAsPassword", "protectedParameters")
_READ_ONLY = ("provisioningState", "instanceView")

BUILT_IN_SCRIPTS = {
    "RunShellScript": ("linux", ""),
    "ifconfig": ("linux", "ip addr 2>/dev/null || ifconfig -a"),
    "RunPowerShellScript": (
        "windows",
        "param(\n    [string]$arg1,\n    [string]$arg2\n)\n"
        "Write-Host This is a sample script with parameters $arg1 $arg2",
    ),
    "IPConfig": ("windows", "ipconfig /all"),
}
"""Built-in command documents the sandbox can run (the rest are Windows-only tooling)."""


@dataclass(frozen=True, slots=True)
class RunCommandInput:
    """A checked PUT body."""

    location: str
    tags: dict[str, str]
    properties: dict[str, Any]

    def settings_equal(self, other: RunCommandInput) -> bool:
        """Whether a re-PUT changes nothing the agent would see (then nothing re-runs)."""
        return self.properties == other.properties and self.tags == other.tags


def parse_put(body: object, provider: str, machine: SimMachine, name: str) -> RunCommandInput:
    """Check a run command PUT body the way the service does; raise ``ArmError`` if bad."""
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid: "
                       "the body must be a JSON object with location and properties.")
    location = body.get("location")
    if not isinstance(location, str) or not location.strip():
        raise ArmError(400, "LocationRequired",
                       "The location property is required for this definition.")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise ArmError(400, "InvalidRequestContent", "tags: an object of string values")
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "properties: required, a JSON object")
    _check_properties(props, provider, machine, name)
    clean = {k: copy.deepcopy(v) for k, v in props.items() if k not in _READ_ONLY}
    return RunCommandInput(location.replace(" ", "").lower(), dict(tags), clean)


def _check_properties(
    props: Mapping[str, Any], provider: str, machine: SimMachine, name: str
) -> None:
    unknown = sorted(set(props) - _PROPERTY_KEYS[provider])
    if unknown:
        raise ArmError(400, "InvalidRequestContent",
                       f"properties.{unknown[0]}: not a property of this run command resource "
                       f"(api allows: {', '.join(sorted(_PROPERTY_KEYS[provider]))})")
    if provider == ARC and not machine.windows and len(name) > ARC_LINUX_NAME_LIMIT:
        raise ArmError(400, "InvalidParameter",
                       f"Run command name '{name}' is longer than {ARC_LINUX_NAME_LIMIT} "
                       "characters, which Linux machines do not support.")
    source = props.get("source")
    if not isinstance(source, dict):
        raise ArmError(400, "InvalidParameter",
                       "properties.source: required; set one of script, scriptUri, commandId")
    unknown = sorted(set(source) - _SOURCE_KEYS[provider])
    if unknown:
        raise ArmError(400, "InvalidRequestContent",
                       f"properties.source.{unknown[0]}: not a source property")
    given = [key for key in ("script", "scriptUri", "commandId") if source.get(key)]
    if "script" in given and "commandId" in given:
        raise ArmError(400, "InvalidParameterConflictingProperties",
                       "Only one of script, scriptUri and commandId may be set in "
                       "properties.source; script and commandId were both given.")
    if len(given) != 1:
        raise ArmError(400, "InvalidParameter",
                       "properties.source: set exactly one of script, scriptUri, commandId "
                       f"(got {', '.join(given) or 'none'})")
    for key in given:
        if not isinstance(source[key], str):
            raise ArmError(400, "InvalidRequestContent", f"properties.source.{key}: a string")
    command_id = source.get("commandId")
    if command_id and command_id not in BUILT_IN_SCRIPTS:
        raise ArmError(404, "NotFound",
                       f"The entity '{command_id}' was not found in this Azure location.")
    for key in ("parameters", "protectedParameters"):
        values = props.get(key, [])
        if not isinstance(values, list):
            raise ArmError(400, "InvalidRequestContent", f"properties.{key}: an array")
        for index, item in enumerate(values):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("name"), str)
                or not isinstance(item.get("value"), str)
            ):
                raise ArmError(400, "InvalidRequestContent",
                               f"properties.{key}[{index}]: an object with string name and "
                               "value (both required)")
    timeout = props.get("timeoutInSeconds", 0)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout < 2**31:
        raise ArmError(400, "InvalidParameter",
                       "properties.timeoutInSeconds: a whole number of seconds, 0 or more")
    for key in ("asyncExecution", "treatFailureAsDeploymentFailure"):
        if key in props and not isinstance(props[key], bool):
            raise ArmError(400, "InvalidRequestContent", f"properties.{key}: true or false")
    for key in ("runAsUser", "runAsPassword", "outputBlobUri", "errorBlobUri"):
        if key in props and not isinstance(props[key], str):
            raise ArmError(400, "InvalidRequestContent", f"properties.{key}: a string")
    for key in ("outputBlobManagedIdentity", "errorBlobManagedIdentity"):
        parse_identity(props.get(key), f"properties.{key}")
    parse_identity(source.get("scriptUriManagedIdentity"),
                   "properties.source.scriptUriManagedIdentity")


def run_request(name: str, seq: int, props: Mapping[str, Any]) -> RunRequest:
    """What the agent receives: public then protected parameters, in array order."""
    source = props["source"]
    script = source.get("script") or ""
    if source.get("commandId"):
        script = BUILT_IN_SCRIPTS[source["commandId"]][1]
    pairs = tuple(
        (item["name"], item["value"])
        for key in ("parameters", "protectedParameters")
        for item in props.get(key, [])
    )
    return RunRequest(
        name=name,
        seq=seq,
        script=script,
        script_uri=source.get("scriptUri") or "",
        parameters=pairs,
        timeout=int(props.get("timeoutInSeconds", 0)),
        run_as_user=props.get("runAsUser", ""),
        output_blob_uri=props.get("outputBlobUri", ""),
        error_blob_uri=props.get("errorBlobUri", ""),
        output_identity=parse_identity(props.get("outputBlobManagedIdentity"), "output"),
        error_identity=parse_identity(props.get("errorBlobManagedIdentity"), "error"),
        script_identity=parse_identity(source.get("scriptUriManagedIdentity"), "script"),
    )


@dataclass(eq=False)
class RunCommand:
    """A run command resource and the execution of its current sequence number."""

    provider: str
    machine: SimMachine
    name: str
    spec: RunCommandInput
    seq: int
    execution: Execution
    created: datetime

    @property
    def resource_id(self) -> str:
        if self.provider == ARC:
            # Arc answers with "Machines" and "runcommands", as its examples show.
            base = self.machine.resource_id.replace("/machines/", "/Machines/")
            return f"{base}/runcommands/{self.name}"
        return f"{self.machine.resource_id}/runCommands/{self.name}"

    @property
    def resource_type(self) -> str:
        if self.provider == ARC:
            return "Microsoft.HybridCompute/machines/runcommands"
        if self.machine.uniform:  # as VirtualMachineScaleSetVMRunCommand_Get.json shows
            return "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/runCommands"
        return "Microsoft.Compute/virtualMachines/runCommands"

    @property
    def provisioning_state(self) -> str:
        execution = self.execution
        if execution.agent_error is not None:
            return "Failed"
        if execution.finished:
            treat = self.provider == COMPUTE and self.spec.properties.get(
                "treatFailureAsDeploymentFailure", False
            )
            return "Failed" if treat and execution.view.exit_code != 0 else "Succeeded"
        if execution.started and self.spec.properties.get("asyncExecution", False):
            return "Succeeded"
        return "Creating" if self.seq == 1 else "Updating"

    @property
    def provisioning_error(self) -> dict[str, str] | None:
        """The error an LRO poll reports when provisioning failed."""
        execution = self.execution
        if execution.agent_error is not None:
            code, message = execution.agent_error
            return {"code": code, "message": message}
        if self.provisioning_state == "Failed":
            return {
                "code": "VMExtensionProvisioningError",
                "message": f"VM has reported a failure when processing extension "
                f"'{self.name}'. Error message: \"{execution.view.execution_message}\"",
            }
        return None

    def to_json(self, *, instance_view: bool) -> dict[str, Any]:
        props = {k: copy.deepcopy(v) for k, v in self.spec.properties.items()
                 if k not in _SECRET_KEYS}
        props.setdefault("asyncExecution", False)
        if self.provider == COMPUTE:
            props.setdefault("treatFailureAsDeploymentFailure", False)
        else:
            props["protectedParameters"] = []
        props.setdefault("timeoutInSeconds", 0)
        props["provisioningState"] = self.provisioning_state
        if instance_view:
            props["instanceView"] = self.execution.view.to_json()
        body: dict[str, Any] = {
            "name": self.name,
            "id": self.resource_id,
            "type": self.resource_type,
            "location": self.spec.location,
        }
        if self.spec.tags:
            body["tags"] = dict(self.spec.tags)
        body["properties"] = props
        if self.provider == ARC:
            stamp = self.created.astimezone(UTC).isoformat()
            body["systemData"] = {"createdAt": stamp, "lastModifiedAt": stamp}
        return body
