"""Files replaced whole: written beside their target and renamed over it.

A reader (another fleetrun, an editor, a crash's aftermath) sees the old file or the new
one, never half of one; the new file is private from its creation, not tightened after.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def replace_file(target: Path, text: str, *, mode: int = 0o600, sync: bool = False) -> None:
    """Make ``target`` hold exactly ``text`` (UTF-8), with permission bits ``mode``.

    Args:
        sync: Flush it to the disk before the rename (for what a power cut must not lose).

    Raises:
        OSError: it could not be written; ``target`` is as it was and no partial file is
            left behind.
    """
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".partial")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            os.fchmod(out.fileno(), mode)
            out.write(text)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
