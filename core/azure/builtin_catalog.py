"""The built-in run commands a fleet's regions offer (``ifconfig``, ``IPConfig``, ...).

``GET .../locations/{loc}/runCommands`` lists each region's ids (reads, Reader's
``Microsoft.Compute/locations/runCommands/read``); ``GET .../runCommands/{id}`` gives one's
parameters. Both are cached for the session: the documents change with Azure's releases, not
within a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from core.azure.action_commands import BuiltinCommand, InvalidActionResult, builtin_list_path
from core.azure.arm import ArmClient
from core.azure.budget import Priority
from core.model import Machine


class BuiltinCatalog:
    """Built-in command documents per (subscription, region), fetched once each."""

    def __init__(self, arm: ArmClient) -> None:
        self.arm = arm
        self._lists: dict[tuple[str, str], list[BuiltinCommand]] = {}
        self._documents: dict[str, BuiltinCommand] = {}
        self._lock = asyncio.Lock()

    async def listed(self, subscription: str, location: str) -> list[BuiltinCommand]:
        """The region's built-ins with their parameters (the free-form script ids left out).

        Raises:
            ArmError: a listing or document could not be read.
            InvalidActionResult: an answer is not a command document.
        """
        key = (subscription.lower(), location.lower())
        async with self._lock:
            if key not in self._lists:
                path = builtin_list_path(subscription, location)
                body = await self.arm.get(path, priority=Priority.CHECK)
                items = body.get("value") if isinstance(body, dict) else None
                if not isinstance(items, list):
                    raise InvalidActionResult(f"GET {path}: 'value' is missing or not a list")
                found = []
                for item in items:
                    summary = BuiltinCommand.parse(item, f"GET {path}")
                    if summary.free_form:
                        continue
                    if summary.id.lower() not in self._documents:
                        document = await self.arm.get(f"{path}/{summary.id}",
                                                      priority=Priority.CHECK)
                        self._documents[summary.id.lower()] = BuiltinCommand.parse(
                            document, f"GET {path}/{summary.id}")
                    found.append(self._documents[summary.id.lower()])
                self._lists[key] = found
            return list(self._lists[key])

    async def for_machines(self, machines: Iterable[Machine]) -> list[BuiltinCommand]:
        """Every built-in any of the machines' regions offers, each once, by OS then id."""
        regions = {(m.subscription, m.location) for m in machines
                   if m.subscription and m.location}
        seen: dict[str, BuiltinCommand] = {}
        for subscription, location in sorted(regions):
            for command in await self.listed(subscription, location):
                seen.setdefault(command.id.lower(), command)
        return sorted(seen.values(), key=lambda c: (c.os.value, c.id.lower()))
