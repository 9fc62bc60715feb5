"""Managed identities named in a run command: ``outputBlobManagedIdentity``,
``errorBlobManagedIdentity`` and ``source.scriptUriManagedIdentity``.

Each is a ``RunCommandManagedIdentity``: ``{}`` for the VM's system-assigned identity, or
exactly one of ``clientId`` / ``objectId`` for a user-assigned one (azure-storage-and-scale-
sets.md 3). The sandbox's machines have a system identity and no user-assigned ones; the
Linux handler takes a user-assigned identity by ``clientId`` only (run-command-handlers.md 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from core.sandbox.errors import ArmError

_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class ManagedIdentity:
    """Which identity writes (or reads) a blob; neither id: the system-assigned one."""

    client_id: str = ""
    object_id: str = ""

    @property
    def is_system(self) -> bool:
        return not self.client_id and not self.object_id

    def refusal(self) -> str | None:
        """Why the simulated machine cannot get a token as this identity; None if it can."""
        if self.is_system:
            return None
        if self.object_id:
            return (f"the handler takes a user-assigned identity by clientId only, not "
                    f"objectId {self.object_id}")
        return f"no user-assigned identity with clientId {self.client_id} is attached to the VM"


def parse_identity(value: Any, where: str) -> ManagedIdentity | None:
    """The identity of a ``RunCommandManagedIdentity`` value; None when absent.

    Raises:
        ArmError: 400 for anything but ``{}``, ``{"clientId": guid}`` or ``{"objectId": guid}``.
    """
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"clientId", "objectId"}:
        raise ArmError(400, "InvalidParameter",
                       f"{where}: an object with clientId or objectId (a GUID), or {{}} for the "
                       "VM's system-assigned identity")
    given = {key: text for key, text in value.items() if text}
    if len(given) > 1:
        raise ArmError(400, "InvalidParameter",
                       f"{where}: set clientId or objectId, not both")
    for key, text in given.items():
        if not isinstance(text, str) or not _GUID.fullmatch(text):
            raise ArmError(400, "InvalidParameter", f"{where}.{key}: a GUID")
    return ManagedIdentity(client_id=given.get("clientId", ""),
                           object_id=given.get("objectId", ""))
