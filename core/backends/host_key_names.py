"""The name a host's keys are known by, and matching known_hosts by that name as ssh does.

OpenSSH looks a server's key up under one name (``sshconnect.c`` ``check_host_key``): the
host's ``HostKeyAlias`` verbatim when set, else its HostName, as ``[host]:port`` off port 22.
When ``[host]:port`` has no key of the presented key's type (and there is no alias), it
also tries the bare ``host`` entry, read-only. The address connected to plays no part
unless ``CheckHostIP yes`` (the default has been ``no`` since 8.5), and even then only to
refuse a key the address's entry contradicts; ssh turns the address check off for loopback
addresses and for ProxyCommand/ProxyJump connections. fleetrun does not do that address
check: it matches by name only whatever CheckHostIP says (so it never refuses a key an
address entry contradicts, and records no address entries).

asyncssh matches by name *and* address (trusting ``[127.0.0.1]:P`` lets ``localhost:P``
pass), takes ``[alias]:port`` for an alias, and falls back to the bare name whatever the
key type. :func:`match_name` is ssh's rule; fleetrun hands asyncssh its result, and the run's
judgement (:mod:`core.backends.ssh_hostkeys`) and the scan's (:mod:`core.backends.ssh_key_scan`)
both use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncssh

from core.backends.host_keys import host_pattern

DEFAULT_PORT = 22

KnownHostsMatch = tuple[Any, ...]
"""asyncssh's match result: trusted keys, CA keys, revoked keys, then X.509 lists."""


@dataclass(frozen=True, slots=True)
class HostKeyName:
    """Who a host is to known_hosts.

    Attributes:
        hostname: The host as connected to (the ssh config's HostName, else the name given).
        port: Its port.
        alias: ``HostKeyAlias`` ("" when unset): the name used instead, verbatim.
    """

    hostname: str
    port: int = DEFAULT_PORT
    alias: str = ""

    @property
    def lookup(self) -> str:
        """The name keys are looked up and recorded under (``ssh-keygen -R`` takes it)."""
        return self.alias or host_pattern(self.hostname, self.port)

    @property
    def fallback(self) -> str:
        """The bare host name also tried for key types ``[host]:port`` lacks ("" if none)."""
        return "" if self.alias or self.port == DEFAULT_PORT else self.hostname

    @property
    def record_host(self) -> tuple[str, int]:
        """(host, port) whose :func:`host_pattern` is :attr:`lookup`: an alias has no port."""
        return (self.alias, DEFAULT_PORT) if self.alias else (self.hostname, self.port)


def match_name(known: asyncssh.SSHKnownHosts, name: HostKeyName) -> KnownHostsMatch:
    """known_hosts' entries for ``name`` alone, as ssh reads them (never by address)."""
    # An empty address: asyncssh would otherwise also match every entry for the address.
    # No port: the lookup name already carries it, so asyncssh adds no fallback of its own.
    trusted, ca_keys, revoked, *x509 = known.match(name.lookup, "", None)
    keys: list[asyncssh.SSHKey] = list(trusted)
    cas: list[asyncssh.SSHKey] = list(ca_keys)
    refused: list[asyncssh.SSHKey] = list(revoked)
    if name.fallback:
        bare_keys, bare_cas, bare_revoked, *_ = known.match(name.fallback, "", None)
        types = {key.get_algorithm() for key in keys}
        keys += [key for key in bare_keys if key.get_algorithm() not in types]
        cas = cas or list(bare_cas)
        refused += [key for key in bare_revoked if key not in refused]
    return (keys, cas, refused, *x509)


def trusted_keys(known: asyncssh.SSHKnownHosts, name: HostKeyName) -> list[asyncssh.SSHKey]:
    """The plain host keys known_hosts trusts for ``name``."""
    return list(match_name(known, name)[0])
