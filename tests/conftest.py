"""Fixtures shared across test folders: the blob endpoints (sandbox and Azurite), sshd."""

pytest_plugins = ["tests.blob_targets", "tests.sshd"]
