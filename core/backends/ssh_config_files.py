"""The ssh config files asyncssh reads for each host, cut down to what applies to it.

asyncssh reads and splits every line of its config files on every connection: with one
``Host`` block per machine, N connections cost N² lines. The files are read once here and
each host gets its own copy holding only the lines that can apply to it
(:func:`core.openssh.config.config_for`); a file that cannot be cut faithfully is
passed whole. Hosts whose cut is the same text (no Host block of their own: ad-hoc node
sets, ``Host *`` configs) share one copy, so a 5,000-host fleet writes as many files as it
has distinct cuts, not one per host.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
from pathlib import Path

from core.openssh.config import SshConfigError, SshConfigReader, config_for, read_ssh_config

DEFAULT_CONFIG = Path("~/.ssh/config")


class ConfigFiles:
    """Per-host ssh config files.

    Args:
        paths: The configs to honour; None for ssh's default (``~/.ssh/config``, if any).
    """

    def __init__(self, paths: tuple[Path, ...] | None) -> None:
        self._explicit = paths is not None
        self._paths = paths if paths is not None else (DEFAULT_CONFIG,)
        self._lock = threading.Lock()
        self._readers: list[tuple[Path, SshConfigReader | None]] | None = None
        self._dir: Path | None = None
        self._written: dict[str, list[str]] = {}
        self._copies: dict[str, str] = {}
        """Each cut's content digest to the copy holding it."""

    def for_host(self, alias: str) -> list[str]:
        """The config files to give asyncssh for ``alias`` (blocking: call in a thread)."""
        with self._lock:
            if alias in self._written:
                return self._written[alias]
            files = [self._file_for(path, reader, alias) for path, reader in self._read()]
            self._written[alias] = files
            return files

    def cached(self, alias: str) -> list[str] | None:
        """What :meth:`for_host` gave for ``alias`` already, without blocking; None if not yet."""
        return self._written.get(alias)

    def originals(self) -> list[str]:
        """The config files as the user named them (for messages naming their lines)."""
        with self._lock:
            return [str(path) for path, _ in self._read()]

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._written.clear()
        self._copies.clear()

    def _read(self) -> list[tuple[Path, SshConfigReader | None]]:
        if self._readers is None:
            readers: list[tuple[Path, SshConfigReader | None]] = []
            for path in (p.expanduser() for p in self._paths):
                if not path.exists() and not self._explicit:
                    continue
                try:
                    readers.append((path, read_ssh_config(path)))
                except SshConfigError:
                    readers.append((path, None))  # asyncssh reports its own errors
            self._readers = readers
        return self._readers

    def _file_for(self, path: Path, reader: SshConfigReader | None, alias: str) -> str:
        text = config_for(reader, alias) if reader is not None else None
        if text is None:
            return str(path)
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="fleetrun-sshconfig-"))
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        copy = self._copies.get(digest)
        if copy is None:
            target = self._dir / f"{digest}.conf"
            target.write_text(text, encoding="utf-8")
            copy = self._copies[digest] = str(target)
        return copy
