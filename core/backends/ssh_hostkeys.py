"""SSH host keys: known_hosts is enforced; unknown keys are reviewed, changed keys refused.

asyncssh checks a server's key against ``known_hosts`` and asks the client object only
about keys it does not trust. :class:`HostKeyPolicy` answers that question: a host with no
known key is *unknown* (collected for one batch review, or accepted and written to
known_hosts when the user said so up front); a host whose known keys differ from the one
presented has a *changed* key, refused with both fingerprints.

What happens to them is each host's ``StrictHostKeyChecking`` (ssh_config(5)): ``ask`` (the
default) collects unknown keys for the batch review; ``accept-new`` records them; ``yes``
refuses them outright; ``no`` lets unknown and changed keys through, with a warning naming
the fingerprints (fleetrun forwards nothing, so ssh's forwarding limits have nothing to
turn off). ``--accept-new-host-keys`` is accept-new for every host. A ``@revoked`` key is
refused by asyncssh before any of this, whatever the mode.
"""

from __future__ import annotations

import logging
from pathlib import Path

import asyncssh
from asyncssh.public_key import get_default_public_key_algs

from core.backends.host_key_names import HostKeyName, match_name
from core.backends.host_keys import HostKeyProblem, KeyVerdict, host_pattern
from core.backends.known_hosts_files import KnownHosts, KnownHostsSet
from core.backends.ssh_host_options import StrictMode
from core.errors import FleetrunError

DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_PORT = 22

log = logging.getLogger(__name__)


class HostKeyError(FleetrunError):
    """A connection refused because of its host key."""

    def __init__(self, problem: HostKeyProblem) -> None:
        self.problem = problem
        super().__init__(problem.message())


class HostKeyPolicy:
    """Decides about keys known_hosts does not trust, and remembers what it refused.

    Each connection is judged against its host's own known_hosts files and
    StrictHostKeyChecking (:class:`CheckingClient`); ``known_hosts`` is the set for hosts
    that name none (the default files, or the ones given on the command line).

    Args:
        known_hosts: The default set of files (a single :class:`KnownHosts` is taken as a
            set of that one user file).
        accept_new: Trust (and record) keys of hosts known_hosts has no key for, on every
            host whatever its config says (``--accept-new-host-keys``).
    """

    def __init__(self, known_hosts: KnownHostsSet | KnownHosts, *,
                 accept_new: bool = False) -> None:
        if isinstance(known_hosts, KnownHosts):
            known_hosts = KnownHostsSet([known_hosts], [])
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.pending: dict[tuple[str, int], HostKeyProblem] = {}
        """Unknown keys refused so far, for one batch review."""
        self.warnings: dict[tuple[str, int], str] = {}
        """Keys let through only because a host says StrictHostKeyChecking no."""
        self._files_of: dict[tuple[str, int], KnownHostsSet] = {}
        """The files each refused host's key is recorded in when the user trusts it."""

    def mode_for(self, configured: StrictMode | None) -> StrictMode:
        """The flag wins over each host's config (as ``ssh -o`` would), then ask."""
        if self.accept_new:
            return StrictMode.ACCEPT_NEW
        return configured or StrictMode.ASK

    def judge(
        self, name: HostKeyName, key: asyncssh.SSHKey, files: KnownHostsSet | None = None,
    ) -> HostKeyProblem | None:
        """What is wrong with ``key`` for the host known_hosts names so (by name only, as
        ssh matches); None if known_hosts trusts it by now (another connection to the same
        host may have just recorded it)."""
        files = files or self.known_hosts
        known = files.known_keys(name)
        fingerprint = key.get_fingerprint()
        known_fingerprints = tuple(dict.fromkeys(k.get_fingerprint() for k in known))
        if fingerprint in known_fingerprints:
            return None
        host, port = name.record_host
        line = f"{name.lookup} {key.export_public_key().decode().strip()}"
        record_file = str(files.path or "")
        if known:
            holding = files.files_holding(name, known_fingerprints)
            return HostKeyProblem(host, port, KeyVerdict.CHANGED, fingerprint, line,
                                  known_fingerprints, record_file,
                                  tuple(str(p) for p in holding))
        return HostKeyProblem(host, port, KeyVerdict.UNKNOWN, fingerprint, line,
                              record_file=record_file)

    def decide(self, problem: HostKeyProblem, files: KnownHostsSet | None = None,
               mode: StrictMode | None = None) -> bool:
        """Whether to go on with a key known_hosts does not trust (StrictHostKeyChecking)."""
        files = files or self.known_hosts
        mode = mode or self.mode_for(None)
        where = (problem.host, problem.port)
        unknown = problem.verdict is KeyVerdict.UNKNOWN
        if mode is StrictMode.NO:
            # Never silent: the user may have meant it for a lab, but a changed key on a
            # real host is how a man in the middle looks.
            what = ("CHANGED host key, accepted" if not unknown
                    else "unknown host key, accepted and recorded")
            known = ("" if unknown else
                     f" (known_hosts has {', '.join(problem.known_fingerprints)})")
            warning = (f"{host_pattern(*where)}: {what} because its ssh config says "
                       f"StrictHostKeyChecking no: it presented {problem.fingerprint}{known}")
            if self.warnings.get(where) != warning:
                log.warning("%s", warning)
            self.warnings[where] = warning
            if unknown:
                self._record(files, [problem.key_line])
            return True
        if unknown and mode is StrictMode.ACCEPT_NEW:
            self._record(files, [problem.key_line])
            return True
        if unknown and mode is StrictMode.ASK:
            self.pending[where] = problem
            self._files_of[where] = files
        return False

    def _record(self, files: KnownHostsSet, lines: list[str]) -> None:
        if not files.add(lines):
            log.warning("host key trusted for this run only: UserKnownHostsFile is none, "
                        "so there is no file to record it in")

    def accept(self, problems: list[HostKeyProblem],
               files_for_all: KnownHostsSet | None = None) -> None:
        """Trust reviewed unknown keys: record each in its host's first user known_hosts
        file (``files_for_all``'s when given: a scanned host's, which no connection of
        this process refused); later connections will pass."""
        unknown = [p for p in problems if p.verdict is KeyVerdict.UNKNOWN]
        by_files: dict[int, tuple[KnownHostsSet, list[str]]] = {}
        for problem in unknown:
            refused_in = self._files_of.pop((problem.host, problem.port), self.known_hosts)
            files = files_for_all or refused_in
            by_files.setdefault(id(files), (files, []))[1].append(problem.key_line)
            self.pending.pop((problem.host, problem.port), None)
        for files, lines in by_files.values():
            self._record(files, lines)


def host_key_algorithms(known: asyncssh.SSHKnownHosts, host: str,
                        port: int) -> list[str] | None:
    """The host key algorithms to ask for when no ``@cert-authority`` line covers ``host``.

    asyncssh asks for certificates first even then, and fails on a certificate from an
    untrusted CA; ssh goes on with the plain key (and its known_hosts line, or the unknown
    key flow). Asking as asyncssh would without CA keys (the known keys' algorithms, else
    every plain-key algorithm) does that. None: a CA line matches, asyncssh's own choice.
    """
    trusted, ca_keys, *_ = match_name(known, HostKeyName(host, port))
    if ca_keys:
        return None
    algorithms: list[str] = []
    for key in trusted:
        algorithms.extend(a.decode() for a in key.sig_algorithms if a.decode() not in algorithms)
    return algorithms or [a.decode() for a in get_default_public_key_algs()]


class CheckingClient(asyncssh.SSHClient):
    """asyncssh's client callbacks, asking the policy about keys known_hosts did not trust.

    Args:
        policy: The backend's policy (it keeps what was refused, for review).
        files: This host's known_hosts files (the policy's default set when None).
        mode: This host's StrictHostKeyChecking, as :meth:`HostKeyPolicy.mode_for` made it.
    """

    def __init__(self, policy: HostKeyPolicy, files: KnownHostsSet | None = None,
                 mode: StrictMode | None = None, name: HostKeyName | None = None) -> None:
        self.policy = policy
        self.name = name
        """Who the host is to known_hosts (None: the host and port asyncssh connects to)."""
        self.files = files or policy.known_hosts
        self.mode = mode or policy.mode_for(None)
        self.problem: HostKeyProblem | None = None
        """A key refused that the user may review (unknown) or must be told of (changed)."""
        self.refusal = ""
        """Why an unknown key was refused outright (StrictHostKeyChecking yes)."""

    def name_for(self, host: str, port: int) -> HostKeyName:
        return self.name or HostKeyName(host, port)

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        problem = self.policy.judge(self.name_for(host, port), key, self.files)
        if problem is None or self.policy.decide(problem, self.files, self.mode):
            return True
        if problem.verdict is KeyVerdict.UNKNOWN and self.mode is StrictMode.YES:
            self.refusal = (f"unknown host key ({problem.fingerprint}) and its ssh config says "
                            "StrictHostKeyChecking yes: add the key to known_hosts yourself "
                            "(after checking it), or set accept-new or ask for it")
            return False
        self.problem = problem
        return False
