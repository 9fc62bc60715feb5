"""Paths people write in files and flags, with ``~`` and ``~user`` expanded.

``Path.expanduser`` raises a bare ``RuntimeError`` for ``~nosuchuser``; here it is a
:class:`UnknownUserError` the reader turns into its own error naming the file and field.
"""

from __future__ import annotations

from pathlib import Path

from core.errors import BadInputError


class UnknownUserError(BadInputError, ValueError):
    """``~user`` names no user with a home directory; the message says which."""


def expand_user(text: str | Path) -> Path:
    """``text`` as a path, ``~`` (your home) and ``~user`` (theirs) expanded.

    Raises:
        UnknownUserError: ``~user`` names no user (or ``~`` alone and no home is known).
    """
    path = Path(text)
    try:
        return path.expanduser()
    except (RuntimeError, ValueError):  # ValueError: a NUL in the name, which pwd refuses
        head = str(text).replace("\\", "/").split("/", 1)[0]
        raise UnknownUserError(f"{head!s}: no such user (so no home directory to expand it "
                               "to)") from None
