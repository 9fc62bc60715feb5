"""Fixtures shared across test folders: the blob endpoints (sandbox and Azurite)."""

pytest_plugins = ["tests.blob_targets"]
