"""SSH host keys: known_hosts is enforced; unknown keys are reviewed, changed keys refused.

asyncssh checks a server's key against ``known_hosts`` and asks the client object only
about keys it does not trust. :class:`HostKeyPolicy` answers that question: a host with no
known key is *unknown* (collected for one batch review, or accepted and written to
known_hosts when the user said so up front); a host whose known keys differ from the one
presented has a *changed* key, which is always refused with both fingerprints.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import asyncssh

from core.backends.host_keys import HostKeyProblem, KeyVerdict, host_pattern
from core.errors import FleetrunError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")


class HostKeyError(FleetrunError):
    """A connection refused because of its host key."""

    def __init__(self, problem: HostKeyProblem) -> None:
        self.problem = problem
        super().__init__(problem.message())


class KnownHosts:
    """One known_hosts file: read for every connection, appended to on acceptance."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = (path or DEFAULT_KNOWN_HOSTS).expanduser()
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int], asyncssh.SSHKnownHosts] | None = None

    def load(self) -> asyncssh.SSHKnownHosts:
        """The file's trusted keys, parsed again only when the file has changed."""
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, -1)
        cached = self._cached
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        parsed = asyncssh.import_known_hosts(text)
        self._cached = (stamp, parsed)
        return parsed

    def known_keys(self, host: str, addr: str, port: int) -> list[asyncssh.SSHKey]:
        trusted, *_ = self.load().match(host, addr, port)
        return list(trusted)

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


class HostKeyPolicy:
    """Decides about keys known_hosts does not trust, and remembers what it refused.

    Args:
        known_hosts: The file to check against and to record accepted keys in.
        accept_new: Trust (and record) keys of hosts known_hosts has no key for.
    """

    def __init__(self, known_hosts: KnownHosts, *, accept_new: bool = False) -> None:
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.pending: dict[tuple[str, int], HostKeyProblem] = {}
        """Unknown keys refused so far, for one batch review."""

    def judge(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> HostKeyProblem | None:
        """What is wrong with ``key`` for this host; None if known_hosts trusts it by now
        (another connection to the same host may have just recorded it)."""
        known = self.known_keys_for(host, addr, port)
        fingerprint = key.get_fingerprint()
        known_fingerprints = tuple(dict.fromkeys(k.get_fingerprint() for k in known))
        if fingerprint in known_fingerprints:
            return None
        line = f"{host_pattern(host, port)} {key.export_public_key().decode().strip()}"
        if known:
            return HostKeyProblem(host, port, KeyVerdict.CHANGED, fingerprint, line,
                                  known_fingerprints)
        return HostKeyProblem(host, port, KeyVerdict.UNKNOWN, fingerprint, line)

    def known_keys_for(self, host: str, addr: str, port: int) -> list[asyncssh.SSHKey]:
        return self.known_hosts.known_keys(host, addr, port)

    def decide(self, problem: HostKeyProblem) -> bool:
        """Whether to go on with a key known_hosts does not trust."""
        if problem.verdict is KeyVerdict.UNKNOWN and self.accept_new:
            self.known_hosts.add([problem.key_line])
            return True
        if problem.verdict is KeyVerdict.UNKNOWN:
            self.pending[(problem.host, problem.port)] = problem
        return False

    def accept(self, problems: list[HostKeyProblem]) -> None:
        """Trust reviewed unknown keys: record them; later connections will pass."""
        unknown = [p for p in problems if p.verdict is KeyVerdict.UNKNOWN]
        self.known_hosts.add([p.key_line for p in unknown])
        for problem in unknown:
            self.pending.pop((problem.host, problem.port), None)


class CheckingClient(asyncssh.SSHClient):
    """asyncssh's client callbacks, asking the policy about keys known_hosts did not trust."""

    def __init__(self, policy: HostKeyPolicy) -> None:
        self.policy = policy
        self.problem: HostKeyProblem | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        problem = self.policy.judge(host, addr, port, key)
        if problem is None or self.policy.decide(problem):
            return True
        self.problem = problem
        return False
