"""Files fleetrun trusts must be the user's own and private, as OpenSSH wants ~/.ssh/config;
what fleetrun writes for itself (the log, the data and config dirs) is owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.trusted_files import UntrustedFileError, check_trusted, make_private

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
OTHER_UID = 4321


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_of_ones_own_without_group_or_other_write_is_trusted(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    path.chmod(0o644)  # what umask 022 makes: readable by all is fine, as for ssh
    check_trusted(path)


@pytest.mark.parametrize(("bits", "who"), [(0o664, "group"), (0o646, "other"),
                                           (0o666, "group and other")])
def test_a_file_others_may_write_is_refused_with_the_fix(
        tmp_path: Path, bits: int, who: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    path.chmod(bits)
    with pytest.raises(UntrustedFileError) as caught:
        check_trusted(path)
    assert str(caught.value) == (
        f"{path}: writable by {who} (mode {bits:04o}); fleetrun uses only files that are "
        f"yours and private: chmod go-w {path}")


@as_root
def test_a_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hosts.toml"
    path.write_text("")
    os.chown(path, OTHER_UID, -1)
    with pytest.raises(UntrustedFileError) as caught:
        check_trusted(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: owned by uid {OTHER_UID}, not by you (root); ")
    assert "fleetrun uses only files that are yours and private" in message


def test_make_private_tightens_what_is_ours(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    make_private(folder, 0o700)
    assert mode(folder) == 0o700


def test_make_private_leaves_a_shared_sticky_folder_alone(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)  # like /tmp: FLEETRUN_DATA_DIR=/tmp must not lock others out
    make_private(folder, 0o700)
    assert mode(folder) == 0o1777
