"""The action Run Command API as data: the POST body fleetrun sends and the result it reads.

``POST .../virtualMachines/{vm}/runCommand`` (what ``az vm run-command invoke`` calls) keeps no
resource: its long-running operation ends with a ``RunCommandResult`` whose ``value[]`` holds
the output (azure-run-command.md 3.1, azure-storage-and-scale-sets.md 7.2):

- Windows: ``ComponentStatus/StdOut/succeeded`` and ``ComponentStatus/StdErr/succeeded``, each
  message a stream;
- Linux: one ``ProvisioningState/succeeded`` whose message is
  ``"Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n..."``.

Each stream is its last 4,096 bytes, and there is no exit code: "succeeded" means the handler
ran the script, whatever it exited with. Built-in command ids (``ifconfig``, ``IPConfig``, ...)
come from ``GET .../locations/{loc}/runCommands`` (:class:`BuiltinCommand`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import FleetrunError
from core.model import Command, OsType, Parameter

ACTION_TAIL_BYTES = 4096
ACTION_NOTE = ("action API: the output is the last 4,096 bytes of each stream and there is no "
               "exit code (Succeeded means the handler ran the script)")
"""Said on every machine that ran through the action API, so nobody reads more into it."""
CONFLICT_STATUS = 409
LINUX_PREFIX = "Enable succeeded: "
STDOUT_MARKER = "[stdout]\n"
STDERR_MARKER = "\n[stderr]\n"
CANNOT_CANCEL = ("the action API cannot cancel: the script goes on on the VM until it ends "
                 "(at most 90 minutes)")


class InvalidActionResult(FleetrunError, ValueError):
    """An action run's result without the ``value[]`` statuses every result has."""


class ActionCannotCancel(FleetrunError):
    """A cancel of a script the action API already runs: it cannot be stopped."""


def action_path(machine_id: str) -> str:
    """The action's ARM path under a VM's resource id."""
    return f"{machine_id.rstrip('/')}/runCommand"


def builtin_list_path(subscription: str, location: str) -> str:
    return (f"/subscriptions/{subscription}/providers/Microsoft.Compute/locations/"
            f"{location}/runCommands")


def action_parameters(parameters: tuple[Parameter, ...]) -> list[dict[str, str]]:
    """``parameters[]`` for the POST: public then protected (the action API has no protected
    parameters: the values travel in the request body only). Unnamed values get the names
    ``az vm run-command invoke`` gives them, ``arg1``, ``arg2``, ... in order; empty values
    are left out."""
    named: list[dict[str, str]] = []
    unnamed = 0
    for parameter in parameters:
        if not parameter.value:
            # The managed Linux handler skips empty values (reference 9): left out here too,
            # so a parameter means the same on both APIs.
            continue
        name = parameter.name
        if not name:
            unnamed += 1
            name = f"arg{unnamed}"
        named.append({"name": name, "value": parameter.value})
    return named


def action_body(command: Command) -> dict[str, Any]:
    """The ``RunCommandInput``: ``commandId`` (the built-in, or RunShellScript /
    RunPowerShellScript), the script as lines (none for a built-in: its own runs) and the
    parameters."""
    ordered = command.ordered_parameters()
    if command.builtin:
        return {"commandId": command.builtin, "parameters": action_parameters(ordered)}
    return {"commandId": command.command_id.value,
            "script": script_lines(command.script),
            "parameters": action_parameters(ordered)}


def script_lines(script: str) -> list[str]:
    """The script as the ``script[]`` lines the handler joins again with newlines: split at
    LF only, so a CR stays in its line as the managed API would keep it."""
    lines = script.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return lines


@dataclass(frozen=True, slots=True)
class ActionOutput:
    """What an action run reported: each stream's last 4,096 bytes."""

    stdout: bytes
    stderr: bytes


def parse_result(body: Any) -> ActionOutput:
    """Read a ``RunCommandResult`` (or the operation status carrying one in
    ``properties.output``).

    Raises:
        InvalidActionResult: no ``value`` list of statuses.
    """
    if isinstance(body, dict) and isinstance(body.get("properties"), dict):
        output = body["properties"].get("output")
        body = output if output is not None else body
    statuses = body.get("value") if isinstance(body, dict) else None
    if not isinstance(statuses, list):
        raise InvalidActionResult("action run result: 'value' is missing or not a list")
    stdout, stderr = "", ""
    for status in statuses:
        if not isinstance(status, dict):
            continue
        code = str(status.get("code") or "").lower()
        message = str(status.get("message") or "")
        if code.startswith("componentstatus/stdout"):
            stdout = message
        elif code.startswith("componentstatus/stderr"):
            stderr = message
        elif code.startswith("provisioningstate/"):
            stdout, stderr = split_linux_message(message)
    return ActionOutput(_last_bytes(stdout), _last_bytes(stderr))


def split_linux_message(message: str) -> tuple[str, str]:
    """The Linux handler's ``Enable succeeded: \\n[stdout]\\n...\\n[stderr]\\n...`` as
    (stdout, stderr).

    A message without the ``[stderr]`` marker is all stdout; one without ``[stdout]`` has its
    text before ``[stderr]`` dropped (the prefix); one with neither is the whole message as
    stdout, so nothing the handler said is lost. A stream that itself prints
    ``\\n[stderr]\\n`` is ambiguous: the last marker is taken as the split.
    """
    text = message
    if text.startswith(LINUX_PREFIX):
        text = text[len(LINUX_PREFIX):]
    text = text.removeprefix("\n")
    has_stdout = text.startswith(STDOUT_MARKER)
    if has_stdout:
        text = text[len(STDOUT_MARKER):]
    split = text.rfind(STDERR_MARKER)
    if split < 0 and text.startswith(STDERR_MARKER.lstrip("\n")):
        # No stdout section at all: the stderr marker starts the text.
        return "", text[len(STDERR_MARKER) - 1:]
    if split < 0:
        return (text if has_stdout else message), ""
    return text[:split], text[split + len(STDERR_MARKER):]


REPLACED_CUT_SLACK = 3
"""The handler cuts each stream in bytes, then sends it as text: a character cut at the start
becomes U+FFFD (3 bytes), so a tail may be a few bytes over 4,096 and is whole as sent."""


def _last_bytes(text: str) -> bytes:
    """The stream as the service sent it; a longer one (not what the API documents) is cut
    to its last 4,096 bytes at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= ACTION_TAIL_BYTES + REPLACED_CUT_SLACK:
        return data
    data = data[-ACTION_TAIL_BYTES:]
    start = 0
    while start < len(data) and 0x80 <= data[start] <= 0xBF:
        start += 1  # a continuation byte: the character began before the cut
    return data[start:]


@dataclass(frozen=True, slots=True)
class BuiltinParameter:
    name: str
    type: str = "string"
    default: str | None = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class BuiltinCommand:
    """A built-in command document: an id the action API runs without a script of ours."""

    id: str
    os: OsType
    label: str
    description: str
    parameters: tuple[BuiltinParameter, ...] = ()

    @classmethod
    def parse(cls, body: Any, where: str) -> BuiltinCommand:
        """A ``RunCommandDocument`` (or its base, without parameters).

        Raises:
            InvalidActionResult: a field every document has is missing.
        """
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise InvalidActionResult(f"{where}: a built-in command document without 'id'")
        os_name = str(body.get("osType") or "").lower()
        if os_name not in ("linux", "windows"):
            raise InvalidActionResult(f"{where}: {body['id']}: osType {body.get('osType')!r} "
                                      "is neither Linux nor Windows")
        parameters = []
        for item in body.get("parameters") or []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                default = item.get("defaultValue")
                parameters.append(BuiltinParameter(
                    item["name"], str(item.get("type") or "string"),
                    None if default is None else str(default), bool(item.get("required"))))
        return cls(body["id"], OsType.LINUX if os_name == "linux" else OsType.WINDOWS,
                   str(body.get("label") or ""), str(body.get("description") or ""),
                   tuple(parameters))

    @property
    def free_form(self) -> bool:
        """RunShellScript and RunPowerShellScript take a script: fleetrun's --shell and
        --powershell, not built-ins to run by id."""
        return self.id.lower() in ("runshellscript", "runpowershellscript")
