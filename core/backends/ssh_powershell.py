"""RunPowerShellScript over SSH: a fixed bootstrap in ``-EncodedCommand``, the rest on stdin.

The Windows managed handler passes parameters as ``-Name value`` pairs to the saved
``.ps1`` (run-command-handlers.md section 2); so does this bootstrap, by splatting a
hashtable, in the same PowerShell process (a child process would need the values on its
command line). The payload is JSON on stdin (script, parameters, timeout, token); the
remote command line carries only the constant bootstrap. A watchdog process, which knows
nothing but the PowerShell process id and the timeout, kills the process tree when the
timeout passes; a cancel kills it from another channel by the id saved in the run's
folder.

This path is written from the handler's documented behaviour and Windows' tools
(``taskkill /T``); fleetrun's tests check what it sends, but no Windows host is available
to them, so it has not yet run against a real powershell.exe.
"""

from __future__ import annotations

import base64
import json

from core.model import Command

_RUN = r"""
$ErrorActionPreference = 'Stop'
$buffer = New-Object System.IO.MemoryStream
[Console]::OpenStandardInput().CopyTo($buffer)
$job = [Text.Encoding]::UTF8.GetString($buffer.ToArray()) | ConvertFrom-Json
$dir = Join-Path ([IO.Path]::GetTempPath()) ('fleetrun-' + $job.token)
New-Item -ItemType Directory -Path $dir | Out-Null
$path = Join-Path $dir 'script.ps1'
[IO.File]::WriteAllText($path, [string]$job.script, (New-Object Text.UTF8Encoding $true))
Set-Content -Path (Join-Path $dir 'pid') -Value $PID
$named = @{}
foreach ($p in $job.parameters) { $named[[string]$p.name] = [string]$p.value }
$timeout = [int]$job.timeout
$job = $null
if ($timeout -gt 0) {
  $watch = "Wait-Process -Id $PID -Timeout $timeout -ErrorAction SilentlyContinue; " +
           "if (Get-Process -Id $PID -ErrorAction SilentlyContinue) { taskkill /F /T /PID $PID }"
  Start-Process -WindowStyle Hidden -FilePath powershell.exe `
    -ArgumentList '-NoProfile', '-NonInteractive', '-Command', $watch | Out-Null
}
Set-Location $dir
$ErrorActionPreference = 'Continue'
$global:LASTEXITCODE = 0
try { & $path @named } catch { [Console]::Error.WriteLine($_); $code = 1 }
if ($null -eq $code) { $code = $LASTEXITCODE }
Set-Location ([IO.Path]::GetTempPath())
Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
exit $code
""".strip()

_KILL = r"""
$dir = Join-Path ([IO.Path]::GetTempPath()) ('fleetrun-' + '{token}')
$id = Get-Content -Path (Join-Path $dir 'pid') -ErrorAction SilentlyContinue
if ($id) { taskkill /F /T /PID $id | Out-Null }
Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
exit 0
""".strip()


def _encoded(code: str, shell: str) -> str:
    encoded = base64.b64encode(code.encode("utf-16-le")).decode()
    flags = "-NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass"
    return f"{shell} {flags} -EncodedCommand {encoded}"


def run_command_line(shell: str = "powershell.exe") -> str:
    """The remote command that starts a PowerShell run: constant code only."""
    return _encoded(_RUN, shell)


def kill_command_line(token: str, shell: str = "powershell.exe") -> str:
    """The remote command that kills a PowerShell run's process tree by its token."""
    if not token.replace("-", "").isalnum():
        raise ValueError(f"run token {token!r}: letters, digits and '-' only")
    return _encoded(_KILL.replace("{token}", token), shell)


def payload(command: Command, token: str) -> bytes:
    """The JSON sent on stdin: the script, ``-Name value`` parameters (public, then
    protected; empty values skipped, as the handler skips them), the timeout and token."""
    parameters = [{"name": p.name, "value": p.value}
                  for p in command.ordered_parameters() if p.named and p.value != ""]
    return json.dumps({"token": token, "timeout": max(0, command.timeout),
                       "script": command.script, "parameters": parameters}).encode()
