"""How one command reaches one machine: one :class:`Backend` protocol, one module each."""

from core.backends.base import Backend

__all__ = ["Backend"]
