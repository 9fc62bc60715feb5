"""The sandbox: an embedded emulator of the Azure Run Command service.

It speaks the ARM endpoints for Compute and HybridCompute managed run commands, machine
health and Resource Graph, plus the append-blob endpoints the run commands write to, and
backs them with simulated machines that really run scripts (or simulate them, for large
fleets), with fault injection. It is written from ``shared/reference`` and ``shared/specs``
only: nothing here imports ``core.azure`` or ``core.backends``, and they import nothing
from here, so a misreading of the API cannot hide by being made twice.
"""
