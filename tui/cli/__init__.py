"""The ``fleetrun`` command: headless subcommands, and the TUI with none.

Exit codes: 0 every targeted machine succeeded; 1 any failed, timed out, was skipped,
canceled or not started; 2 bad input (a message, never a traceback); 130 interrupted.

Each subcommand is a module here with its parser (``add_parser``) beside its handler;
:mod:`tui.cli.parser` puts them together and :mod:`tui.cli.entry` runs one.
"""

from tui.cli.entry import main

__all__ = ["main"]
