"""asyncssh loaded without its X.509 certificate support, which OpenSSH does not speak.

asyncssh imports ``asyncssh.crypto.x509`` at start-up for RFC 6187's ``x509v3-*`` key and
host key algorithms. That module imports ``cryptography.x509``, whose distinguished-name
parser compiles its regular expressions at import: about 20 ms of a 300 ms start before
fleetrun can open its first connection (bench/ssh's start-up rows). OpenSSH, whose files
and semantics fleetrun follows, has no X.509 support: an OpenSSH server never offers those
algorithms and its known_hosts and authorized_keys hold no X.509 entries. asyncssh already
treats the module as optional (its imports sit in ``try``/``except ImportError``), so
:func:`install` makes that import fail, and asyncssh leaves the ``x509v3-*`` algorithms out
of what it offers, as it does on an installation without them. OpenSSH certificates
(``@cert-authority``, ``*-cert-v01@openssh.com``) are asyncssh's own code and unaffected.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

LEFT_OUT = "asyncssh.crypto.x509"
"""The module asyncssh may do without."""


def install() -> None:
    """From now on (before asyncssh is first imported), asyncssh comes without X.509."""
    if not any(isinstance(finder, _LeaveOutX509) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LeaveOutX509())


class _LeaveOutX509:
    """A meta path finder (by duck typing) that refuses :data:`LEFT_OUT` alone."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname == LEFT_OUT:
            raise ImportError("fleetrun uses asyncssh without X.509 certificates (RFC 6187), "
                              "which OpenSSH does not support", name=fullname)
        return None
