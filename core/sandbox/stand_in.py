"""A Windows machine's stand-in where the sandbox host has no PowerShell.

A machine whose fleet entry leaves ``executor`` unset (``auto``) runs scripts for real where
the host can. Linux hosts always have bash; most have no ``pwsh``, and a newcomer's first
mixed-fleet run would then fail on every Windows machine. Such a machine plays a stand-in
instead and says so twice: the first line of every run's output, and a ``sandbox`` tag on
the machine (which the machine details show). A fleet file that writes
``executor = "process"`` asked for real PowerShell and gets it, or a clear failure: a run
that pretends to succeed is never what an explicit setting asked for.

The stand-in reads the script just enough to look like the machine ran it: lines that only
print (``Write-Output``, ``Write-Host``, ``echo``, a lone string) print their text, with
``$env:COMPUTERNAME``, ``$(hostname)`` and the run's named parameters filled in, and lines
that only ask the machine's name print it. Everything else is skipped; the run succeeds.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Sequence

from core.sandbox.executors import SimulatedExecutor
from core.sandbox.fleet import MachineSpec, Simulation

NO_PWSH = "simulated: no pwsh on this host"
"""The reason, as the machine's tag and its runs' first line say it."""
TAG = "sandbox"
FIRST_LINE = f"{NO_PWSH}; install PowerShell 7 to run it\n"

_PRINT = re.compile(r"^(?:Write-Output|Write-Host|echo)\s+(?P<text>.+)$", re.IGNORECASE)
_NAME_ONLY = re.compile(r"^(?:hostname|\$env:COMPUTERNAME|\[System\.Net\.Dns\]::GetHostName\(\)"
                        r"|\[Environment\]::MachineName)$", re.IGNORECASE)
_VARIABLE = re.compile(r"\$\((?P<call>hostname)\)|\$(?P<env>env:)?(?P<name>[A-Za-z_]\w*)",
                       re.IGNORECASE)


def stand_in_reason(spec: MachineSpec) -> str:
    """Why this machine plays the stand-in instead of running scripts; '' when it does not."""
    if spec.executor != "auto" or spec.os != "windows":
        return ""
    return "" if pwsh_on_host() else NO_PWSH


def pwsh_on_host() -> bool:
    """Whether this host has PowerShell 7 where the process executor looks for it."""
    return shutil.which("pwsh") is not None


class PowerShellStandIn(SimulatedExecutor):
    """What a Windows machine prints for a script when the host cannot run PowerShell."""

    def __init__(self, script: str, parameters: Sequence[tuple[str, str]], machine_name: str,
                 duration: tuple[float, float], rng: random.Random) -> None:
        text = FIRST_LINE + "".join(
            line + "\n" for line in printed_lines(script, dict(parameters), machine_name))
        super().__init__(Simulation(duration=duration, output=text, lines=1), machine_name, rng)

    def _fill(self, template: str, line: int) -> bytes:
        return template.encode("utf-8")  # the script's own text: no {machine} to fill in


def printed_lines(script: str, parameters: dict[str, str], machine_name: str) -> list[str]:
    """What the script's print-only lines would print on ``machine_name``."""
    printed = []
    for raw in script.splitlines():
        line = raw.strip().rstrip(";").strip()
        if _NAME_ONLY.match(line):
            printed.append(machine_name)
            continue
        match = _PRINT.match(line)
        text = match.group("text").strip() if match else line
        value = _literal(text, parameters, machine_name)
        if value is not None and (match or text[:1] in "'\""):
            printed.append(value)
    return printed


def _literal(text: str, parameters: dict[str, str], machine_name: str) -> str | None:
    """A quoted string's value (double quotes expand variables); a bare word as it is."""
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return _VARIABLE.sub(lambda m: _variable(m, parameters, machine_name), text[1:-1])
    if text[:1] == "$":
        value = _VARIABLE.sub(lambda m: _variable(m, parameters, machine_name), text)
        return value if value != text else None
    return text if re.fullmatch(r"[\w.,:!?-]+(?:\s+[\w.,:!?-]+)*", text) else None


def _variable(match: re.Match[str], parameters: dict[str, str], machine_name: str) -> str:
    name = match.group("name") or ""
    if match.group("call") or (match.group("env") and name.upper() == "COMPUTERNAME"):
        return machine_name
    if match.group("env"):
        return ""
    by_lower = {key.lower(): value for key, value in parameters.items() if key}
    return by_lower.get(name.lower(), "")
