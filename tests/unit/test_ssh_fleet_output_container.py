"""An SSH fleet copies output to ``[azure] output_container`` (or the environment's) when
set, and without either never loads the Azure settings: start-up time of every SSH run."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from core.azure import settings
from core.backends.ssh import SshBackend
from core.fleet import ssh
from core.fleet.opened_backend import OpenedBackend
from core.fleet.options import FleetOptions

ROOT = Path(__file__).resolve().parents[2]
CONTAINER_SAS = ("https://fleetrunout.blob.core.windows.net/output?sv=2022-11-02&sr=c&sp=racwl"
                 "&se=2099-01-01T00:00:00Z&sig=CANARYsig0123%3D")


@pytest.fixture(autouse=True)
def _config_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ssh.OUTPUT_CONTAINER_ENV, raising=False)
    monkeypatch.setenv("FLEETRUN_CONFIG_DIR", str(tmp_path))


def _copies_output(opened: OpenedBackend) -> bool:
    assert isinstance(opened.backend, SshBackend)
    try:
        return opened.backend._blobs is not None
    finally:
        asyncio.run(opened.aclose())


def _config(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)


def test_the_environment_variable_is_the_azure_settings_one() -> None:
    assert ssh.OUTPUT_CONTAINER_ENV == settings.OUTPUT_CONTAINER_ENV


def test_no_azure_table_and_no_variable_copies_nothing(tmp_path: Path) -> None:
    _config(tmp_path, "[other]\nkey = 1\n")
    assert not _copies_output(ssh.open_ssh_backend([], FleetOptions()))


def test_an_output_container_in_config_toml_is_copied_to(tmp_path: Path) -> None:
    _config(tmp_path, f'[azure]\noutput_container = "{CONTAINER_SAS}"\n')
    assert _copies_output(ssh.open_ssh_backend([], FleetOptions()))


def test_the_variable_alone_names_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ssh.OUTPUT_CONTAINER_ENV, CONTAINER_SAS)
    assert _copies_output(ssh.open_ssh_backend([], FleetOptions()))


def test_an_unreadable_config_copies_nothing(tmp_path: Path) -> None:
    _config(tmp_path, "[azure\n")  # not TOML: the Azure fleet reports it, SSH goes on
    assert not _copies_output(ssh.open_ssh_backend([], FleetOptions()))


def test_without_azure_settings_no_azure_module_loads(tmp_path: Path) -> None:
    code = ("import sys; from core.fleet.ssh import open_ssh_backend; "
            "from core.fleet.options import FleetOptions; open_ssh_backend([], FleetOptions()); "
            "print(sorted(m for m in sys.modules if m.startswith('core.azure')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
