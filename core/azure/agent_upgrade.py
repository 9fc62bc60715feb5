"""The commands that upgrade an Arc machine's Connected Machine agent, run on the machine.

An agent older than 1.33 has no run commands (:data:`core.azure.machine_health.MIN_ARC_AGENT`);
the way out is upgrading it, as Learn's "Managing and maintaining the Connected Machine
agent", section "Upgrade the agent" (azure-arc/servers/manage-agent.md) gives it:

- Linux, per package manager: ``sudo apt update`` then ``sudo apt upgrade azcmagent``;
  ``sudo yum check-update`` then ``sudo yum update azcmagent``; ``sudo zypper refresh``
  then ``sudo zypper update azcmagent``.
- Windows, from the command line: download the installer from
  https://aka.ms/AzureConnectedMachineAgent, then
  ``msiexec.exe /i AzureConnectedMachineAgent.msi /qn /l*v "<log file>"``.

``azcmagent upgrade`` exists only from agent 1.62 on (Learn "azcmagent upgrade"), so it
never applies to an agent this old. The distribution is not known here (ARM's ``osType``
says only linux), so the Linux command picks the package manager the documented way on
each family; ``yum check-update`` is left out because it exits 100 when an update exists,
which would stop a ``&&`` chain, and ``yum update`` refreshes its metadata itself.
"""

from __future__ import annotations

from core.model import OsType

INSTALLER_URL = "https://aka.ms/AzureConnectedMachineAgent"

_LINUX = ("if command -v apt >/dev/null; then sudo apt update && sudo apt upgrade azcmagent; "
          "elif command -v zypper >/dev/null; then sudo zypper refresh && "
          "sudo zypper update azcmagent; else sudo yum update azcmagent; fi")
_WINDOWS = (
    f"Invoke-WebRequest -Uri {INSTALLER_URL} -OutFile AzureConnectedMachineAgent.msi",
    "msiexec.exe /i AzureConnectedMachineAgent.msi /qn /l*v azcmagentupgradesetup.log",
)


def upgrade_commands(os_type: OsType | None) -> tuple[str, ...]:
    """The commands, in order, that upgrade the agent on a machine of ``os_type`` (bash on
    Linux, PowerShell as administrator on Windows); none when the OS is not known."""
    if os_type is OsType.LINUX:
        return (_LINUX,)
    if os_type is OsType.WINDOWS:
        return _WINDOWS
    return ()
