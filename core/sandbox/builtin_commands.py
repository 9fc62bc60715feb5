"""The built-in run command documents a location lists (``GET .../locations/{loc}/runCommands``).

The ids, osTypes, labels and descriptions are those of the 2025-04-01 list example
(``RunCommand_List.json``, reference 3.2); ``RunPowerShellScript``'s script and parameters are
those of ``RunCommand_Get.json``; ``ifconfig``'s ``arguments`` and ``SetRDPPort``'s ``RDPPort``
are the parameters the reference (azure-storage-and-scale-sets.md 7.1) reads from their
scripts. The real scripts of the Windows built-ins need Windows, so each document's ``script``
here is the sandbox's stand-in: PowerShell (or shell) that prints what the real one reports,
under a first-line comment saying so. Those stand-ins are what the action API runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SCHEMA = "http://schema.management.azure.com/schemas/2016-11-17/runcommands.json"
RUN_SHELL_SCRIPT = "RunShellScript"
RUN_POWERSHELL_SCRIPT = "RunPowerShellScript"


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    default: str | None = None
    required: bool = False

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"name": self.name, "type": "string"}
        if self.default is not None:
            body["defaultValue"] = self.default
        if self.required:
            body["required"] = True
        return body


@dataclass(frozen=True, slots=True)
class BuiltinCommand:
    id: str
    os_type: str
    """``Windows`` or ``Linux``, as the document spells it."""
    label: str
    description: str
    script: tuple[str, ...]
    parameters: tuple[Parameter, ...] = ()

    @property
    def windows(self) -> bool:
        return self.os_type == "Windows"

    def summary(self) -> dict[str, Any]:
        """The ``RunCommandDocumentBase`` the list shows."""
        return {"$schema": SCHEMA, "id": self.id, "osType": self.os_type, "label": self.label,
                "description": self.description}

    def document(self) -> dict[str, Any]:
        """The ``RunCommandDocument`` GET returns: the summary, its script and parameters."""
        return {"script": list(self.script),
                "parameters": [p.to_json() for p in self.parameters], **self.summary()}

    def defaults(self) -> list[tuple[str, str]]:
        return [(p.name, p.default) for p in self.parameters if p.default is not None]


def _stand_in(command_id: str, *lines: str, windows: bool = True) -> tuple[str, ...]:
    note = (f"# sandbox stand-in for the built-in {command_id} script: it prints what the "
            "real one reports and changes nothing")
    if windows:
        return (note, *(f"Write-Output '{line}'" for line in lines))
    return (note, *(f"echo '{line}'" for line in lines))


_CUSTOM_SHELL = ("Custom multiline shell script should be defined in script property. Optional "
                 "parameters can be set in parameters property.")
_CUSTOM_POWERSHELL = ("Custom multiline PowerShell script should be defined in script property. "
                      "Optional parameters can be set in parameters property.")

BUILTINS: tuple[BuiltinCommand, ...] = (
    BuiltinCommand(
        "EnableRemotePS", "Windows", "Enable remote PowerShell",
        "Configure the machine to enable remote PowerShell.",
        _stand_in("EnableRemotePS", "WinRM service is running and set to start automatically.",
                  "Firewall rule 'Windows Remote Management (HTTPS-In)' enabled on port 5986.",
                  "Remote PowerShell is enabled.")),
    BuiltinCommand(
        "IPConfig", "Windows", "List IP configuration",
        "Shows detailed information for the IP address, subnet mask and default gateway for "
        "each adapter bound to TCP/IP.",
        ("# sandbox stand-in for the built-in IPConfig script: it prints what the real one "
         "reports and changes nothing",
         "Write-Output 'Windows IP Configuration'",
         "Write-Output \"   Host Name . . . . . . . . . . . . : $env:COMPUTERNAME\"",
         "Write-Output 'Ethernet adapter Ethernet:'",
         "Write-Output '   IPv4 Address. . . . . . . . . . . : 10.0.0.4'",
         "Write-Output '   Subnet Mask . . . . . . . . . . . : 255.255.255.0'",
         "Write-Output '   Default Gateway . . . . . . . . . : 10.0.0.1'")),
    BuiltinCommand(
        RUN_POWERSHELL_SCRIPT, "Windows", "Executes a PowerShell script", _CUSTOM_POWERSHELL,
        ("param(", "    [string]$arg1,", "    [string]$arg2", ")",
         "Write-Host This is a sample script with parameters $arg1 $arg2"),
        (Parameter("arg1", "value1"), Parameter("arg2", "value2"))),
    BuiltinCommand(
        RUN_SHELL_SCRIPT, "Linux", "Executes a Linux shell script", _CUSTOM_SHELL,
        # No document of it is quoted in the reference: a sample in the manner of
        # RunPowerShellScript's, run only when the caller gives no script.
        ('echo "This is a sample script with parameters $arg1 $arg2"',),
        (Parameter("arg1", "value1"), Parameter("arg2", "value2"))),
    BuiltinCommand(
        "ifconfig", "Linux", "List network configuration",
        "Get the configuration of all network interfaces.",
        ("# sandbox stand-in for the built-in ifconfig script: it prints what the real one "
         "reports and changes nothing",
         'echo "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500 ${arguments}"',
         'echo "        inet 10.0.0.4  netmask 255.255.255.0  broadcast 10.0.0.255"',
         'echo "lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536"',
         'echo "        inet 127.0.0.1  netmask 255.0.0.0"'),
        (Parameter("arguments", ""),)),
    BuiltinCommand(
        "EnableAdminAccount", "Windows", "Enable administrator account",
        "Checks if the local Administrator account is disabled, and if so enables it.",
        _stand_in("EnableAdminAccount", "The local Administrator account is enabled.")),
    BuiltinCommand(
        "ResetAccountPassword", "Windows", "Reset built-in Administrator account password",
        "Reset built-in Administrator account password.",
        # Its parameters are unconfirmed in the reference (7.1): none are offered.
        _stand_in("ResetAccountPassword",
                  "The built-in Administrator account password was reset.")),
    BuiltinCommand(
        "RDPSettings", "Windows", "Verify RDP Listener Settings",
        "Checks registry settings and domain policy settings. Suggests policy actions if "
        "machine is part of a domain or modifies the settings to default values.",
        _stand_in("RDPSettings", "Checking registry settings...",
                  "fDenyTSConnections = 0 (Remote Desktop connections allowed)",
                  "PortNumber = 3389", "SecurityLayer = 2, UserAuthentication = 1",
                  "The machine is not part of a domain: no policy actions to suggest.")),
    BuiltinCommand(
        "SetRDPPort", "Windows", "Set Remote Desktop port",
        "Sets the default or user specified port number for Remote Desktop connections. "
        "Enables firewall rule for inbound access to the port.",
        ("param(", "    [string]$RDPPort = '3389'", ")",
         "# sandbox stand-in for the built-in SetRDPPort script: it prints what the real one "
         "reports and changes nothing",
         "Write-Output \"Remote Desktop port set to $RDPPort.\"",
         "Write-Output \"Firewall rule for inbound TCP port $RDPPort enabled.\""),
        (Parameter("RDPPort", "3389"),)),
    BuiltinCommand(
        "ResetRDPCert", "Windows", "Restore RDP Authentication mode to defaults",
        "Removes the SSL certificate tied to the RDP listener and restores the RDP listerner "
        "security to default. Use this script if you see any issues with the certificate.",
        _stand_in("ResetRDPCert", "The SSL certificate bound to the RDP listener was removed.",
                  "RDP listener security restored to defaults.")),
)

_BY_ID = {command.id.lower(): command for command in BUILTINS}


def builtin(command_id: str) -> BuiltinCommand | None:
    """The built-in of that id (case-insensitive, as ARM matches), or None."""
    return _BY_ID.get(command_id.lower())
