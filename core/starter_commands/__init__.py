"""fleetrun's starter library: incident-response commands, one TOML file each.

``tcp-check.toml`` is the commented example of the format (see also :mod:`core.library`).
Every shell script here runs on the sandbox's Linux machines in the test suite
(tests/library/test_starter_commands.py); the PowerShell ones are checked statically.
"""
