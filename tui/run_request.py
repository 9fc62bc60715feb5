"""What the compose screen hands back: which machine gets which command, and how to spread."""

from __future__ import annotations

from dataclasses import dataclass

from core.fanout import FanoutOptions
from core.model import Command, Machine


@dataclass(frozen=True, slots=True)
class RunRequest:
    """A checked, confirmed run, ready for the fan-out engine.

    Attributes:
        assignments: every selected machine with its command (RunShellScript for Linux,
            RunPowerShellScript for Windows), in selection order. Unhealthy machines are
            included: the run shows them as skipped.
        options: concurrency and error budget.
    """

    assignments: tuple[tuple[Machine, Command], ...]
    options: FanoutOptions
