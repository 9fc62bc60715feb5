"""How one command reaches one machine: one :class:`Backend` protocol, one module each."""

from core.backends import asyncssh_lib_probes, asyncssh_without_x509
from core.backends.base import Backend

# Before any backend imports asyncssh: its library probes without ldconfig, and no X.509
# (see the modules).
asyncssh_lib_probes.install()
asyncssh_without_x509.install()

__all__ = ["Backend"]
