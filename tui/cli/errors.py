"""How a ``fleetrun`` command ends: its exit codes, and the error that means bad input."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the user: printed as one clear message, exit code 2."""
