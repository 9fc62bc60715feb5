"""Ad-hoc SSH hosts from a node set (``--hosts``, ``--fleet ssh:HOSTS``), no file needed.

Each name of the node set (:mod:`core.node_sets`) is ``[user@]host[:port]``: the machine is
named as written, and connects to ``host``, to which the OpenSSH config still applies as
ssh would apply it (``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump`` of a
matching ``Host`` block). The defaults (``-l``, ``-i``, ``--port``) fill what a name leaves
out, and win over the ssh config as ssh's own ``-l``/``-i``/``-p`` do; a ``user@`` or
``:port`` written in the name wins over them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.inventory.errors import InventoryError
from core.inventory.ssh_hosts import MAX_PORT, PORT_ALLOWED, ssh_machine
from core.model import Machine
from core.node_sets import NodeSetError, expand

_USER = re.compile(r"[A-Za-z0-9._][A-Za-z0-9._-]*")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


@dataclass(frozen=True, slots=True)
class HostDefaults:
    """What ad-hoc hosts get when their name does not say.

    Attributes:
        user: Login name (``-l``); empty leaves it to the ssh config, then the local user.
        identity_file: Private key (``-i``); empty leaves it to the ssh config and the agent.
        port: Port (``--port``); None leaves it to the ssh config, then 22.
    """

    user: str = ""
    identity_file: str = ""
    port: int | None = None


def load_host_list(text: str, defaults: HostDefaults | None = None) -> list[Machine]:
    """The SSH machines a node set of ``[user@]host[:port]`` names, in ClusterShell's order.

    Raises:
        InventoryError: the node set cannot be read, a name is not ``[user@]host[:port]``,
            or it names no host at all; the message says what is allowed.
    """
    defaults = defaults or HostDefaults()
    try:
        names = expand(text)
    except NodeSetError as exc:
        raise InventoryError(f"hosts {exc}") from None
    if not names:
        raise InventoryError(f"hosts {text!r}: no hosts are left once the operators apply")
    machines = []
    for name in names:
        user, host, port = split_host(name, text)
        machines.append(ssh_machine(
            name, host=host, user=user or defaults.user, port=port or defaults.port,
            identity_file=defaults.identity_file))
    return machines


def split_host(name: str, text: str) -> tuple[str, str, int | None]:
    """``user``, ``host`` and ``port`` of one expanded name (empty, None when not written)."""
    def bad(what: str) -> InventoryError:
        return InventoryError(f"hosts {text!r}: {name!r}: {what}; write [user@]host[:port]")

    user, at, rest = name.rpartition("@")
    if at and not _USER.fullmatch(user):
        raise bad("the login name before '@' takes letters, digits, '.', '_', '-'")
    host, colon, port_text = rest.partition(":")
    if ":" in port_text:
        raise bad("more than one ':' (IPv6 addresses go in an ssh config Host block "
                  "with HostName, then use its alias)")
    if not _HOST.fullmatch(host):
        raise bad("the host takes letters, digits, '.', '_', '-' (not first)")
    if not colon:
        return user, host, None
    port = parse_port_text(port_text)
    if port is None:
        raise bad(f"port {port_text!r}: {PORT_ALLOWED}")
    return user, host, port


def parse_port_text(text: str) -> int | None:
    """A port written as digits, or None when it is not one in 1-65535."""
    if not text.isdigit():
        return None
    number = int(text)
    return number if 1 <= number <= MAX_PORT else None
