"""Fixtures shared across test folders: the blob endpoints (sandbox and Azurite), sshd."""

import signal

pytest_plugins = ["tests.blob_targets", "tests.sshd"]

# A test runner started as a background job of a non-interactive shell (nohup ... &, some
# CI wrappers) has SIGINT ignored, and every child would inherit that: the tests that stop
# `fleetrun sandbox serve` or a run with Ctrl-C would wait in vain. A handled signal is
# reset to its default in a child at exec, so handling it here gives each child a real
# Ctrl-C, as a person's terminal does.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
