"""Collecting the host keys SSH hosts present, as ssh-keyscan does: no login, one key per type.

The key exchange proves the server holds its host key before any authentication, so a
client that refuses every key ends the connection right there: nothing is logged into and
no credential is offered. :class:`KeyCollector` is that client; the SSH backend connects
with it once per key type (the server picks one key per connection, so a host with an
ed25519 and an RSA key needs two), through the host's own route (ProxyJump bastions are
logged into as for a run: a scan reaches the hosts behind them the same way).

Each key is judged against known_hosts as a run would see it (:func:`judge_key`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncssh

from core.backends.host_key_names import HostKeyName
from core.backends.known_hosts_files import KnownHostsSet
from core.backends.ssh_host_options import StrictMode
from core.backends.ssh_hostkeys import CheckingClient, HostKeyPolicy
from core.errors import FleetrunError
from core.host_key_scan import HostScan, ScannedKey, ScanVerdict
from core.model import Machine

KEY_FAMILIES: tuple[tuple[str, ...], ...] = (
    ("ssh-ed25519",),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"),
    ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
)
"""The host key types asked for, one connection each (as ``ssh-keyscan``'s default)."""

ANY_KEY: tuple[str, ...] = tuple(alg for family in KEY_FAMILIES for alg in family)

NO_TRUSTED_KEYS = asyncssh.import_known_hosts("")
"""Trusts nothing, so that every key the server presents reaches the collector."""


@dataclass(frozen=True, slots=True)
class PresentedKey:
    """A key a server presented, with the name known_hosts knows its host by."""

    name: HostKeyName
    """Who the host is to known_hosts (HostKeyAlias, else ``[HostName]:port``)."""
    key: asyncssh.SSHKey
    known_hosts: KnownHostsSet
    """The host's own known_hosts files, which judge the key as a run's connection would."""


class KeyCollector(CheckingClient):
    """Notes the key the server presents and refuses it: the connection ends before login."""

    def __init__(self, policy: HostKeyPolicy, files: KnownHostsSet,
                 mode: StrictMode, name: HostKeyName | None = None) -> None:
        super().__init__(policy, files, mode, name)
        self.presented: PresentedKey | None = None

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.presented = PresentedKey(self.name_for(host, port), key, self.files)
        return False


FetchKey = Callable[[Machine, Sequence[str]], Awaitable[PresentedKey]]
"""Connects to a machine offering these key types; the key it presented.
Raises FleetrunError (the backend's SshError) when no key could be had."""


def _family(algorithm: str) -> int:
    for index, family in enumerate(KEY_FAMILIES):
        if algorithm in family:
            return index
    return -1


def judge_key(presented: PresentedKey) -> ScannedKey:
    """Known (known_hosts trusts it), changed (known_hosts has another key of this type for
    the host: a run offered it would be refused) or unknown."""
    key = presented.key
    fingerprint = key.get_fingerprint()
    line = f"{presented.name.lookup} {key.export_public_key().decode().strip()}"
    known = presented.known_hosts.known_keys(presented.name)
    algorithm = key.get_algorithm()
    if any(k.get_fingerprint() == fingerprint for k in known):
        return ScannedKey(algorithm, fingerprint, line, ScanVerdict.KNOWN)
    same_type = tuple(dict.fromkeys(k.get_fingerprint() for k in known
                                    if _family(k.get_algorithm()) == _family(algorithm)))
    if same_type:
        holding = presented.known_hosts.files_holding(presented.name, same_type)
        return ScannedKey(algorithm, fingerprint, line, ScanVerdict.CHANGED, same_type,
                          tuple(str(path) for path in holding))
    return ScannedKey(algorithm, fingerprint, line, ScanVerdict.UNKNOWN)


async def scan_host(fetch: FetchKey, machine: Machine) -> HostScan:
    """Every key type the machine's host has, judged; or why it could not be reached.

    The first connection lets the server pick any type: its failure is the host's (it is
    down, refuses us, a bastion fails). The other types are then asked for at once, and a
    server without one simply has none of it.
    """
    endpoint = machine.ssh
    host, port = (endpoint.host, endpoint.port or 22) if endpoint else (machine.name, 22)
    try:
        first = await fetch(machine, ANY_KEY)
    except FleetrunError as exc:
        return HostScan(machine.name, host, port, error=str(exc))
    others = [family for index, family in enumerate(KEY_FAMILIES)
              if index != _family(first.key.get_algorithm())]
    found = await asyncio.gather(*(fetch(machine, family) for family in others),
                                 return_exceptions=True)
    presented = [first, *(p for p in found if isinstance(p, PresentedKey))]
    for failure in found:
        if isinstance(failure, BaseException) and not isinstance(failure, FleetrunError):
            raise failure
    keys = tuple(judge_key(p) for p in presented)
    return HostScan(machine.name, *first.name.record_host, keys)
