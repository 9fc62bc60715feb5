"""asyncssh without X.509 (RFC 6187): OpenSSH has none, and cryptography.x509 costs ~20 ms of
start-up. OpenSSH's own certificates and every key algorithm stay offered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import core.backends.ssh
import asyncssh.public_key as keys
from asyncssh.connection import _validate_algs  # noqa: F401  (asyncssh loads whole)
try:
    import asyncssh.crypto.x509
    refused = ""
except ImportError as exc:
    refused = str(exc)
print(json.dumps({
    "x509_modules": sorted(m for m in sys.modules if m.split(".")[-1] == "x509" or ".x509." in m),
    "x509_algs": [a.decode() for a in keys.get_x509_certificate_algs()],
    "cert_algs": [a.decode() for a in keys.get_certificate_algs()],
    "key_algs": [a.decode() for a in keys.get_public_key_algs()],
    "refused": refused,
}))
"""


def test_an_ssh_backend_loads_asyncssh_without_x509_and_keeps_openssh_certificates() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    report = json.loads(done.stdout)
    assert report["x509_modules"] == []
    assert report["x509_algs"] == []
    assert "OpenSSH does not support" in report["refused"]
    assert "ssh-ed25519-cert-v01@openssh.com" in report["cert_algs"]
    assert "rsa-sha2-256-cert-v01@openssh.com" in report["cert_algs"]
    for algorithm in ("ssh-ed25519", "ecdsa-sha2-nistp256", "rsa-sha2-512"):
        assert algorithm in report["key_algs"]
