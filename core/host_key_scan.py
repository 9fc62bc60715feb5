"""A host-key scan: the keys a fleet's SSH hosts presented, judged, and kept for review.

``fleetrun hostkeys scan`` collects each host's keys without logging in and records them
here; ``fleetrun hostkeys trust`` later trusts exactly the recorded key lines (never
fetched again), so what the user reviewed is what gets pinned. No SSH library: the SSH
backend fills these in (:mod:`core.backends.ssh_key_scan`).

The record is one JSON file in the data dir, owner-only (0600 in a 0700 folder), replaced
atomically: a scan either fully replaces the last one or leaves it as it was.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core import config
from core.atomic_files import replace_file
from core.backends.host_keys import HostKeyProblem, KeyVerdict, host_pattern, removal_command
from core.errors import BadInputError

SCAN_FILE = "host-key-scan.json"
SCAN_VERSION = 1


class ScanVerdict(enum.StrEnum):
    KNOWN = "known"
    """known_hosts already trusts it."""
    UNKNOWN = "unknown"
    """Never seen: it may be reviewed and trusted."""
    CHANGED = "changed"
    """known_hosts has another key of this type for the host: never trusted from fleetrun."""
    ERROR = "error"
    """The host could not be scanned (a host's verdict only)."""


@dataclass(frozen=True, slots=True)
class ScannedKey:
    """One key a host presented.

    Attributes:
        key_type: The SSH key algorithm (``ssh-ed25519``, ``ecdsa-sha2-nistp256``, ...).
        fingerprint: ``SHA256:...`` exactly as ``ssh-keygen -lf`` prints it.
        key_line: The known_hosts line that trusts this key for the host.
        verdict: Known, unknown or changed.
        known_fingerprints: What known_hosts has for the host instead (changed keys only).
        known_in: The known_hosts files holding those (changed keys only).
    """

    key_type: str
    fingerprint: str
    key_line: str
    verdict: ScanVerdict
    known_fingerprints: tuple[str, ...] = ()
    known_in: tuple[str, ...] = ()

    def removal_commands(self, where: str) -> list[str]:
        """How to drop the keys it contradicts: ``ssh-keygen -R`` on each file holding them."""
        return [removal_command(where, file) for file in self.known_in or ("",)]


@dataclass(frozen=True, slots=True)
class HostScan:
    """What one machine's host presented (or why it could not be asked).

    Attributes:
        machine: The machine's name in the fleet.
        host: The host name its keys are known by (the ssh config's HostName or
            HostKeyAlias), as known_hosts names it.
        port: Its port.
        keys: Each key it presented, one per key type it has.
        error: Why no key could be collected ("" when some were).
    """

    machine: str
    host: str
    port: int
    keys: tuple[ScannedKey, ...] = ()
    error: str = ""

    @property
    def where(self) -> str:
        """The host as known_hosts and ``ssh-keygen -R`` name it (``[host]:port`` off 22)."""
        return host_pattern(self.host, self.port)

    @property
    def verdict(self) -> ScanVerdict:
        """Changed if any key is; known if one is (a run negotiates the known key's type);
        else unknown; error when nothing was collected."""
        verdicts = {key.verdict for key in self.keys}
        if self.error or not verdicts:
            return ScanVerdict.ERROR
        for verdict in (ScanVerdict.CHANGED, ScanVerdict.KNOWN):
            if verdict in verdicts:
                return verdict
        return ScanVerdict.UNKNOWN

    def problems(self) -> list[HostKeyProblem]:
        """The unknown keys, as the host-key policy trusts them (exactly these lines)."""
        return [HostKeyProblem(self.host, self.port, KeyVerdict.UNKNOWN, key.fingerprint,
                               key.key_line)
                for key in self.keys if key.verdict is ScanVerdict.UNKNOWN]


@dataclass(frozen=True, slots=True)
class ScanRecord:
    """One scan of a fleet: what ``hostkeys trust`` picks keys from."""

    fleet: tuple[str, ...]
    scanned_at: datetime
    hosts: tuple[HostScan, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "version": SCAN_VERSION,
            "fleet": list(self.fleet),
            "scanned_at": self.scanned_at.isoformat(),
            "hosts": [_host_json(h) for h in self.hosts],
        }

    @classmethod
    def from_json(cls, doc: Any) -> ScanRecord:
        """Raises KeyError, TypeError or ValueError for a document of another shape."""
        if doc["version"] != SCAN_VERSION:
            raise ValueError(f"version {doc['version']!r}")
        hosts = tuple(
            HostScan(str(h["machine"]), str(h["host"]), int(h["port"]),
                     tuple(ScannedKey(str(k["type"]), str(k["fingerprint"]),
                                      str(k["key_line"]), ScanVerdict(k["verdict"]),
                                      tuple(str(f) for f in k["known_fingerprints"]),
                                      tuple(str(f) for f in k.get("known_in", ())))
                           for k in h["keys"]),
                     str(h["error"]))
            for h in doc["hosts"])
        return cls(tuple(str(s) for s in doc["fleet"]),
                   datetime.fromisoformat(doc["scanned_at"]), hosts)


def _host_json(host: HostScan) -> dict[str, Any]:
    return {
        "machine": host.machine,
        "host": host.host,
        "port": host.port,
        "verdict": host.verdict.value,
        "error": host.error,
        "keys": [{"type": k.key_type, "fingerprint": k.fingerprint,
                  "verdict": k.verdict.value, "known_fingerprints": list(k.known_fingerprints),
                  "known_in": list(k.known_in),
                  "key_line": k.key_line}
                 for k in host.keys],
    }


class ScanFileError(BadInputError):
    """The recorded scan is missing or unreadable; the message says what to do."""


def scan_path() -> Path:
    return config.data_dir() / SCAN_FILE


def save_scan(record: ScanRecord, path: Path | None = None) -> Path:
    """Replace the recorded scan (0600, written beside and renamed into place).

    Raises:
        ScanFileError: it could not be written.
    """
    path = path or scan_path()
    text = json.dumps(record.to_json(), indent=2) + "\n"
    try:
        replace_file(path, text)
    except OSError as exc:
        raise ScanFileError(f"{path}: cannot record the scan: {exc.strerror or exc}") from None
    return path


def load_scan(path: Path | None = None) -> ScanRecord:
    """The last recorded scan.

    Raises:
        ScanFileError: there is none, or it cannot be read (one line saying so).
    """
    path = path or scan_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScanFileError("no host-key scan recorded yet: run `fleetrun hostkeys scan "
                            "--fleet FLEET` first, review it, then trust") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScanFileError(f"{path}: cannot read the recorded scan: {exc}") from None
    try:
        return ScanRecord.from_json(json.loads(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise ScanFileError(f"{path}: not a scan this fleetrun recorded ({exc}); run "
                            "`fleetrun hostkeys scan` again") from None
