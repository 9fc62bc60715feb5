"""The known_hosts files a host's keys are checked against, as OpenSSH reads them.

A host has its user files (``UserKnownHostsFile``, default ``~/.ssh/known_hosts`` and
``known_hosts2``; ``none``: no user file) and its global files (``GlobalKnownHostsFile``,
default ``/etc/ssh/ssh_known_hosts`` and ``ssh_known_hosts2``). A key trusted by any of them
passes; a ``@revoked`` line in any of them refuses the key whatever the others say;
``@cert-authority`` lines, hashed names and negated patterns are asyncssh's parser's
(``sshd(8)``). A missing file is skipped, as ssh skips it. Keys accepted are recorded in the
FIRST user file, as ssh records them; global files are never written.

Every file is re-read only when its size or mtime changes: one parse serves every
connection of a 5,000-host fleet.

Trust: OpenSSH reads any known_hosts it can open (its StrictModes-style checks cover
``~/.ssh/config`` and keys, not known_hosts). fleetrun is stricter, with the rule it applies
to every file that decides what it runs where (:mod:`core.trusted_files`): a known_hosts
file owned by another user (root excepted) or writable by group or others is refused, and
so is every connection that would be checked against it. Whoever can write that file can
vouch for a man-in-the-middle's key on all the fleet's hosts at once, and fleetrun would
also append to it; the message names the file and the ``chmod``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import asyncssh

from core.backends.host_key_names import HostKeyName, trusted_keys
from core.trusted_files import UntrustedFileError, check_trusted

_MISSING = (0, -1, -1)


class KnownHosts:
    """One known_hosts file: read when it changes, appended to on acceptance."""

    def __init__(self, path: Path) -> None:
        self.path = path.expanduser()
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int], str] | None = None

    def text(self) -> tuple[tuple[int, int, int], str]:
        """The file's text ("" when missing) and the stamp it was read at.

        Raises:
            UntrustedFileError: someone else owns it or may write it.
        """
        try:
            info = self.path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return _MISSING, ""
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached
        check_trusted(self.path, info)
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return _MISSING, ""
        self._cached = (stamp, text)
        return self._cached

    def load(self) -> asyncssh.SSHKnownHosts:
        return asyncssh.import_known_hosts(self.text()[1])

    def known_keys(self, name: HostKeyName) -> list[asyncssh.SSHKey]:
        """The keys trusted for the host named so, by name only (:func:`match_name`)."""
        return trusted_keys(self.load(), name)

    def add(self, lines: list[str]) -> None:
        """Append trusted-key lines (created 0600 in a 0700 folder if missing)."""
        if not lines:
            return
        with self._lock:
            try:
                present = set(self.path.read_text(encoding="utf-8", errors="replace")
                              .splitlines())
            except FileNotFoundError:
                present = set()
            # Several connections to one host may accept its key at once: record it once.
            lines = [line for line in dict.fromkeys(lines) if line not in present]
            if not lines:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as out:
                out.writelines(line + "\n" for line in lines)
            self._cached = None


class KnownHostsSet:
    """A host's user and global known_hosts files, read as one."""

    def __init__(self, user: Sequence[KnownHosts], global_: Sequence[KnownHosts]) -> None:
        self.user = tuple(user)
        self.global_ = tuple(global_)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[object, ...], asyncssh.SSHKnownHosts] | None = None

    @property
    def first_user(self) -> KnownHosts | None:
        """Where accepted keys go (None with ``UserKnownHostsFile none``)."""
        return self.user[0] if self.user else None

    @property
    def path(self) -> Path | None:
        """The first user file's path (where :meth:`add` writes); None when there is none."""
        first = self.first_user
        return first.path if first is not None else None

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(f.path for f in (*self.user, *self.global_))

    def load(self) -> asyncssh.SSHKnownHosts:
        """Every file's lines as one trusted set, parsed again only when one has changed.

        Raises:
            UntrustedFileError: a file someone else owns or may write.
        """
        texts = [f.text() for f in (*self.user, *self.global_)]
        stamps = tuple(stamp for stamp, _ in texts)
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == stamps:
                return cached[1]
            parsed = asyncssh.import_known_hosts("\n".join(text for _, text in texts))
            self._cached = (stamps, parsed)
            return parsed

    def known_keys(self, name: HostKeyName) -> list[asyncssh.SSHKey]:
        """The keys trusted for the host named so, by name only (:func:`match_name`)."""
        return trusted_keys(self.load(), name)

    def files_holding(self, name: HostKeyName, fingerprints: Sequence[str]) -> tuple[Path, ...]:
        """The files with a key of these fingerprints for the host (where to remove them)."""
        return tuple(f.path for f in (*self.user, *self.global_)
                     if any(k.get_fingerprint() in fingerprints for k in f.known_keys(name)))

    def add(self, lines: list[str]) -> bool:
        """Record lines in the first user file; False when there is none to write."""
        first = self.first_user
        if first is None:
            return False
        first.add(lines)
        return True


class KnownHostsFiles:
    """Every known_hosts file of a backend, each read (and cached) once, shared by hosts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[Path, KnownHosts] = {}
        self._sets: dict[tuple[tuple[Path, ...], tuple[Path, ...]], KnownHostsSet] = {}

    def file(self, path: Path) -> KnownHosts:
        path = path.expanduser()
        with self._lock:
            return self._files.setdefault(path, KnownHosts(path))

    def set_for(self, user: Sequence[Path], global_: Sequence[Path]) -> KnownHostsSet:
        key = (tuple(p.expanduser() for p in user), tuple(p.expanduser() for p in global_))
        with self._lock:
            found = self._sets.get(key)
        if found is None:
            found = KnownHostsSet([self.file(p) for p in key[0]],
                                  [self.file(p) for p in key[1]])
            with self._lock:
                found = self._sets.setdefault(key, found)
        return found


__all__ = ["KnownHosts", "KnownHostsFiles", "KnownHostsSet", "UntrustedFileError"]
