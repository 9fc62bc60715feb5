"""The blob-endpoint fixtures live in ``tests/blob_targets.py`` (loaded by ``tests/conftest.py``).

The target classes are re-exported here for the tests that import them from this module.
"""

from tests.blob_targets import BlobTarget, SandboxTarget

__all__ = ["BlobTarget", "SandboxTarget"]
