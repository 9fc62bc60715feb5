"""How one command reaches one machine: one :class:`Backend` protocol, one module each."""

from core.backends import asyncssh_lib_probes
from core.backends.base import Backend

# Before any backend imports asyncssh: its library probes without ldconfig (see the module).
asyncssh_lib_probes.install()

__all__ = ["Backend"]
