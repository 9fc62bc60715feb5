"""The one error an inventory gives: what cannot be read, or a value that is not allowed."""

from __future__ import annotations

from core.errors import BadInputError


class InventoryError(BadInputError, ValueError):
    """An inventory that cannot be listed; the message names the file, line and field."""
