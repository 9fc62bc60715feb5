"""Files fleetrun acts on must be the user's own, and what it keeps must stay private.

A saved command, a theme, config.toml or an inventory decides what runs where on a fleet;
one that another user may change is theirs to run. As OpenSSH's ``secure_permissions``
does for ``~/.ssh/config``: the file must belong to the user running fleetrun (or to root)
and must not be writable by its group or by others. Readable by others is fine (umask 022).

The other half: what fleetrun writes for itself (its log, its data and config folders) is
owner-only, and a folder or log that already exists with a looser mode is tightened, if it
is ours.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import BadInputError

_POSIX = hasattr(os, "getuid")


class UnreadableFileError(BadInputError, ValueError):
    """A file fleetrun cannot or will not read; the message names it and says why."""


class UntrustedFileError(UnreadableFileError):
    """A file fleetrun will not use: someone else owns it or may change it."""


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_trusted(path: Path, info: os.stat_result | None = None) -> None:
    """Refuse ``path`` unless it is the user's (or root's) and only the owner may write it.

    Args:
        path: The file, as it is named to the user.
        info: Its ``stat`` when the caller has it already (saves a system call).

    Raises:
        UntrustedFileError: one line naming the file, what is wrong and the fix.
        OSError: the file cannot be looked at (the caller reports it as unreadable).
    """
    if not _POSIX:
        return  # Windows has ACLs, not owner and mode bits: nothing to compare
    info = info if info is not None else path.stat()
    me = os.geteuid()
    if info.st_uid not in (me, 0):
        raise UntrustedFileError(
            f"{path}: owned by {_user_name(info.st_uid)}, not by you ({_user_name(me)}); "
            "fleetrun uses only files that are yours and private: copy it to a file of your "
            "own")
    loose = [who for who, bit in (("group", stat.S_IWGRP), ("other", stat.S_IWOTH))
             if info.st_mode & bit]
    if loose:
        raise UntrustedFileError(
            f"{path}: writable by {' and '.join(loose)} (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); fleetrun uses only files that are yours and "
            f"private: chmod go-w {path}")


def read_trusted_text(path: Path) -> str:
    """A file's UTF-8 text, if it is the user's own (:func:`check_trusted`).

    Raises:
        UnreadableFileError: one line naming the file and why it cannot be used (not
            trusted, missing, a directory, not UTF-8, not readable).
    """
    try:
        check_trusted(path)
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        if isinstance(exc, UnreadableFileError):
            raise
        raise UnreadableFileError(f"{path!r}: not a valid file name") from None  # a NUL
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UnreadableFileError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read: {exc.strerror}") from None


def make_private(path: Path, mode: int) -> None:
    """Take away from ``path`` every permission bit ``mode`` does not have, if it is ours.

    A folder with the sticky bit (``/tmp`` named as the data dir) is shared by design and
    is left alone, as is anything another user owns. Errors are ignored: this only ever
    tightens, and a file that cannot be changed is reported by whatever uses it.
    """
    if not _POSIX:
        return
    try:
        info = path.stat()
        current = stat.S_IMODE(info.st_mode)
        if info.st_uid != os.geteuid() or current & stat.S_ISVTX or not current & ~mode:
            return
        path.chmod(current & mode)
    except OSError:
        pass
