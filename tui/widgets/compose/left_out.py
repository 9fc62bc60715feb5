"""What the composer says about an OS of the selection that has no script: its tab's label,
the notice in its tab, the confirmation's left-out line, and the problem when no OS has one.

Pure wording: the composer decides which OS is left out (``ComposeScreen._says_missing``).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.model import CommandId, OsType
from core.validate import Problem

SCRIPT_KIND = {CommandId.SHELL: "shell (RunShellScript)",
               CommandId.POWERSHELL: "PowerShell (RunPowerShellScript)"}

MAX_NAMES_SHOWN = 5
"""How many machine names a left-out line lists before saying "and N more"."""

NARROW_WIDTH = 120
"""Below this many columns both tabs' full labels do not fit: the same words, fewer."""


def script_kind(os_type: OsType) -> str:
    return SCRIPT_KIND[CommandId.for_os(os_type)]


def tab_label(os_type: OsType, count: int, *, width: int, left_out: bool) -> str:
    """``RunShellScript · 2 linux``, and ``· no script: left out`` if its machines are."""
    command = str(CommandId.for_os(os_type))
    narrow = width < NARROW_WIDTH
    if narrow:
        command = command.removeprefix("Run").removesuffix("Script")
    label = f"{command} · {count} {os_type}"
    if left_out:
        label += " · left out" if narrow else " · no script: left out"
    return label


def missing_notice(os_type: OsType, count: int, saved_name: str | None) -> str:
    """The notice in the tab of an OS without a script (``saved_name``: the loaded one's)."""
    kind = script_kind(os_type)
    whose = f"{saved_name} has no {kind} script" if saved_name is not None \
        else f"no {kind} script yet"
    return (f"⊘ {whose}: the {count} {os_type} machine(s) are left out of the run. Write a "
            "script here to run them too.")


def left_out_line(os_type: OsType, names: Sequence[str], saved_name: str | None) -> str:
    """The confirmation's line for an OS whose machines (``names``) are left out."""
    shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (
        f" and {len(names) - MAX_NAMES_SHOWN} more" if len(names) > MAX_NAMES_SHOWN else "")
    whose = f"{saved_name} has no" if saved_name is not None else "no"
    return (f"⊘ {len(names)} {os_type} machine(s) left out: {whose} {script_kind(os_type)} "
            f"script ({shown})")


def no_script_problem(saved_name: str, oses: Sequence[OsType]) -> Problem:
    """The loaded saved command has a script for none of the selection's OSes."""
    kinds = " or ".join(script_kind(os_type) for os_type in oses)
    return Problem("script", f"{saved_name} has no {kinds} script for the selected machines: "
                   "write one on their tab, or choose machines it has a script for")
