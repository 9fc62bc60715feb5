"""Whether a run lost output to Azure's 4 KB tails, and the one line that says how not to.

Without output storage an Azure run command's only output is its instance view's last
4,096 bytes per stream. A machine whose stream filled that tail (give or take a character
the handler cut in half) has lost the rest; the front ends then say once how to keep it:
``fleetrun azure setup-output``. A short output was whole, so nothing is said.
"""

from __future__ import annotations

from collections.abc import Callable

from core.backends.base import Backend
from core.model import Machine, MachineRun, Run

TAIL_BYTES = 4096
CUT_SLACK = 3
"""A multi-byte character the handler cut in two may shorten the tail by up to 3 bytes."""
SETUP_OUTPUT_HINT = (
    "Only the last 4 KB of {count} machine(s)' output could be kept: Azure's instance view "
    "holds no more. For the full output, run `fleetrun azure setup-output --account NAME` "
    "once (a storage account of yours; fleetrun makes the container and signs each run's "
    "access)."
)


def keeps_full_output(backend: Backend) -> bool:
    """Whether ``backend`` reads whole outputs (everything but Azure without storage)."""
    return bool(getattr(backend, "keeps_full_output", True))


def cut_at_tail(run: Run, backend_for: Callable[[Machine], Backend]) -> list[MachineRun]:
    """The machines of ``run`` whose output was cut at the tail for want of storage."""
    cut: list[MachineRun] = []
    for machine_run in run.machines.values():
        try:
            backend = backend_for(machine_run.machine)
        except LookupError:
            continue
        if keeps_full_output(backend):
            continue
        longest = max(machine_run.stdout_bytes, machine_run.stderr_bytes)
        if longest >= TAIL_BYTES - CUT_SLACK:
            cut.append(machine_run)
    return cut


def setup_output_hint(run: Run, backend_for: Callable[[Machine], Backend]) -> str:
    """The line to show once, or '' when no machine's output was cut."""
    cut = cut_at_tail(run, backend_for)
    return SETUP_OUTPUT_HINT.format(count=len(cut)) if cut else ""
