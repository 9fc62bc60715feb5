"""asyncssh's liboqs and nettle probes, answered by a glob instead of ``ldconfig``: the same
libraries found, the same algorithms offered, no subprocess at import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.backends.asyncssh_lib_probes import find_shared_library, library_dirs

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the glob lookup is for Linux only")


def _library(path: Path, header: bytes) -> Path:
    path.write_bytes(header + b"\0" * 64)
    return path


def _own_header() -> bytes:
    with open(sys.executable, "rb") as file:
        return file.read(20)


def test_a_library_where_the_glob_looks_is_found_by_its_soname(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    header = _own_header()
    other_class = header[:4] + bytes([3 - header[4]]) + header[5:]  # 32-bit for 64, and back
    _library(first / "liboqs.so.5", other_class)  # this interpreter could not load it
    _library(second / "liboqs.so", header)
    soname = _library(second / "liboqs.so.5", header)
    _library(second / "liboqs.so.0.12.0", header)
    assert find_shared_library("oqs", [str(first), str(second)]) == str(soname)
    assert find_shared_library("oqs", [str(first)]) is None
    assert find_shared_library("nettle", [str(second)]) is None


def test_the_linkers_folders_come_from_ld_library_path_and_ld_so_conf(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("# a comment\n/opt/a/lib\n")
    conf = tmp_path / "ld.so.conf"
    conf.write_text(f"include {tmp_path}/conf.d/*.conf\n/opt/b/lib  # trailing\n")
    dirs = library_dirs(conf, {"LD_LIBRARY_PATH": "/opt/env:"})
    assert dirs[:3] == ["/opt/env", "/opt/a/lib", "/opt/b/lib"]
    assert "/usr/lib" in dirs


PROBE = """
import ctypes.util, json, os, subprocess
started = []
popen_init = subprocess.Popen.__init__
def recording(self, args, *rest, **kwargs):
    started.append(args)
    return popen_init(self, args, *rest, **kwargs)
subprocess.Popen.__init__ = recording
import core.backends.ssh  # the way every fleetrun path loads asyncssh
import asyncssh
from asyncssh.crypto import pq, umac
seen_at_import = list(started)
base = lambda path: path and os.path.basename(path)
print(json.dumps({
    "started": [str(a) for a in seen_at_import],
    "kex": [a.decode() for a in asyncssh.kex.get_kex_algs()],
    "liboqs": [base(pq._oqs_lib), base(ctypes.util.find_library("oqs")
                                        or ctypes.util.find_library("liboqs"))],
    "nettle": [base(umac._nettle_lib), base(ctypes.util.find_library("nettle"))],
}))
"""


def test_importing_asyncssh_runs_no_ldconfig_and_finds_what_ldconfig_finds() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    report = json.loads(done.stdout)
    assert report["started"] == []
    assert "mlkem768x25519-sha256" in report["kex"]  # ML-KEM from cryptography, as before
    assert report["liboqs"][0] == report["liboqs"][1]
    assert report["nettle"][0] == report["nettle"][1]
