"""Whether an Arc machine's own agent configuration lets Run Command's handler run.

The Connected Machine agent can refuse the handler locally (run-command-handlers.md 6): its
``extensions.blocklist`` names it, an ``extensions.allowlist`` leaves it out (``Allow/None``
allows nothing), the extension service is switched off, or ``config.mode`` is ``monitor``
(which blocks script-running extensions). Such settings can only be changed on the machine
itself, with ``azcmagent config``; ARM reports them in the machine's
``properties.agentConfiguration``. A run there would be refused by the agent and reported
as a failure, so fleetrun decides it before the run and says which command lifts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.model import OsType

HANDLER_PUBLISHER = "microsoft.cplat.core"
HANDLER_TYPES = {OsType.LINUX: "runcommandhandlerlinux",
                 OsType.WINDOWS: "runcommandhandlerwindows"}
"""The extension type Run Command uses on each OS (``Publisher/Type``, as azcmagent takes it)."""


@dataclass(frozen=True, slots=True)
class LocalBlock:
    """One reason an agent refuses Run Command, and the command on the machine that lifts it."""

    reason: str
    unblock: str


def handler_name(os_type: OsType) -> str:
    """``microsoft.cplat.core/runcommandhandlerlinux`` (or ``...windows``)."""
    return f"{HANDLER_PUBLISHER}/{HANDLER_TYPES[os_type]}"


def local_blocks(configuration: object, os_type: OsType) -> list[LocalBlock]:
    """What in ``agentConfiguration`` keeps Run Command from running, in the order to lift it.

    ``configuration`` is the machine's ``properties.agentConfiguration`` as ARM sends it
    (anything else, or absent keys, blocks nothing): ``configMode`` ``monitor``,
    ``extensionsEnabled`` ``"false"``, ``extensionsBlockList`` naming the handler, and an
    ``extensionsAllowList`` that does not. Lists hold ``{publisher, type}`` objects; names
    are compared without regard to case, as the agent compares them.
    """
    if not isinstance(configuration, dict):
        return []
    azcmagent = "azcmagent" if os_type is OsType.WINDOWS else "sudo azcmagent"
    handler = handler_name(os_type)
    blocks: list[LocalBlock] = []
    if _text(configuration.get("configMode")).lower() == "monitor":
        blocks.append(LocalBlock(
            "the agent is in monitor mode, which blocks script-running extensions",
            f"{azcmagent} config set config.mode full"))
    if _text(configuration.get("extensionsEnabled")).lower() == "false" or (
            configuration.get("extensionsEnabled") is False):
        blocks.append(LocalBlock("the agent's extension service is disabled",
                                 f"{azcmagent} config set extensions.enabled true"))
    blocked = _extensions(configuration.get("extensionsBlockList"))
    if handler in (name.lower() for name in blocked):
        rest = [name for name in blocked if name.lower() != handler]
        blocks.append(LocalBlock(
            f"{handler} is on the agent's extensions blocklist",
            f'{azcmagent} config set extensions.blocklist "{",".join(rest)}"'))
    allowed = _extensions(configuration.get("extensionsAllowList"))
    if allowed and handler not in (name.lower() for name in allowed):
        if [name.lower() for name in allowed] == ["allow/none"]:
            reason, kept = "the agent's extensions allowlist is Allow/None (allows nothing)", []
        else:
            reason = f"the agent's extensions allowlist leaves out {handler}"
            kept = [name for name in allowed if name.lower() != "allow/none"]
        blocks.append(LocalBlock(
            reason, f'{azcmagent} config set extensions.allowlist "{",".join([*kept, handler])}"'))
    return blocks


def _extensions(value: object) -> Sequence[str]:
    """``Publisher/Type`` of each entry of an extensions list (null or junk: none)."""
    if not isinstance(value, list):
        return []
    names = []
    for entry in value:
        if isinstance(entry, dict):
            publisher, kind = _text(entry.get("publisher")), _text(entry.get("type"))
            if publisher and kind:
                names.append(f"{publisher}/{kind}")
        elif isinstance(entry, str) and "/" in entry:
            names.append(entry.strip())
    return names


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
