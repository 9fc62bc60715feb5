"""Per-host cuts of an ssh config give asyncssh exactly the options the whole file gives."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from asyncssh.config import SSHClientConfig
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.backends.ssh_config_files import ConfigFiles
from core.openssh.config import config_for, read_ssh_config

CONFIG = """
Host *
    ServerAliveInterval 30
    IdentitiesOnly yes

Include {included}

Host bastion
    HostName bastion.example.com
    User ops
    Port 2222
    IdentityFile ~/.ssh/id_ops

Host web-1 web-2   # the web tier, through the bastion
    HostName %h.prod.example.com
    ProxyJump bastion

Host db-primary db-replica,!db-old
    User postgres

Host *.internal ?ackup
    User backup

Host web-1
    HostName ignored.example.com
    Port 2200

Match host db-*
    HostName maintenance.example.com

Host=legacy
    HostName "legacy.example.com"
"""
INCLUDED = """
Host lab-*
    User lab
    Port 2022
"""
ALIASES = ("bastion", "web-1", "web-2", "db-primary", "db-old", "x.internal", "backup",
           "lab-7", "legacy", "elsewhere")


def options(path: Path, alias: str) -> dict[str, object]:
    config = SSHClientConfig.load(None, [path], False, False, False, getpass.getuser(), (),
                                  alias, ())
    return {key: config.get(key) for key in (
        "Hostname", "Port", "User", "IdentityFile", "ProxyJump", "ServerAliveInterval",
        "IdentitiesOnly")}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "included.conf").write_text(INCLUDED)
    path = tmp_path / "config"
    path.write_text(CONFIG.format(included=tmp_path / "included.conf"))
    return path


def test_each_hosts_cut_gives_the_same_options_as_the_whole_file(
    config: Path, tmp_path: Path
) -> None:
    reader = read_ssh_config(config)
    for alias in ALIASES:
        cut = config_for(reader, alias)
        assert cut is not None
        piece = tmp_path / f"{alias}.conf"
        piece.write_text(cut)
        assert options(piece, alias) == options(config, alias), alias
    # and it is a cut: other hosts' blocks are not in it
    assert "bastion.example.com" not in (config_for(reader, "web-2") or "")


def test_an_include_under_a_host_line_is_passed_whole(tmp_path: Path) -> None:
    (tmp_path / "more.conf").write_text("User someone\n")
    path = tmp_path / "config"
    path.write_text(f"Host a\n    Include {tmp_path / 'more.conf'}\nHost b\n    User b\n")
    assert config_for(read_ssh_config(path), "a") is None
    files = ConfigFiles((path,))
    assert files.for_host("a") == [str(path)]
    files.close()


def test_lines_after_an_include_that_brought_blocks_keep_the_file_whole(tmp_path: Path) -> None:
    (tmp_path / "more.conf").write_text("Host x\n    User x\n")
    path = tmp_path / "config"
    path.write_text(f"Include {tmp_path / 'more.conf'}\nUser everyone\nHost b\n    Port 2\n")
    assert config_for(read_ssh_config(path), "b") is None


def test_config_files_are_cut_once_per_host_and_removed_on_close(config: Path) -> None:
    files = ConfigFiles((config,))
    [first] = files.for_host("web-1")
    assert files.for_host("web-1") == [first]
    assert Path(first).read_text() == config_for(read_ssh_config(config), "web-1")
    files.close()
    assert not Path(first).exists()


def test_hosts_with_the_same_cut_share_one_copy(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("Host *\n    User everyone\nHost web-1\n    Port 2201\n")
    files = ConfigFiles((path,))
    # Node-set hosts with no block of their own: one file for all of them.
    [shared] = files.for_host("db-1")
    assert files.for_host("db-2") == [shared]
    assert files.cached("db-2") == [shared]
    assert files.cached("db-3") is None  # not cut yet: the caller goes to a thread
    [own] = files.for_host("web-1")
    assert own != shared
    assert Path(own).read_text() == config_for(read_ssh_config(path), "web-1")
    assert len(list(Path(shared).parent.iterdir())) == 2
    files.close()


_FOLDS = "\u017f\u212a"
"""Beyond ASCII, yet equal to "s" and "k" when case is ignored (long s, Kelvin sign)."""
_WORDS = st.text(alphabet="abskAB-1*?!." + _FOLDS, min_size=1, max_size=4).filter(
    lambda w: w != "!")


@settings(max_examples=300, deadline=None)
@given(hosts=st.lists(st.lists(_WORDS, min_size=1, max_size=3), max_size=8),
       matches=st.sets(st.integers(0, 8)),
       alias=st.text(alphabet="abskSB-1." + _FOLDS, min_size=1, max_size=4))
@example(hosts=[["s"]], matches=set(), alias="\u017f")  # the long s matches "s", ignoring case
def test_the_blocks_looked_up_by_name_are_those_every_pattern_tried_would_give(
    tmp_path_factory: pytest.TempPathFactory, hosts: list[list[str]], matches: set[int],
    alias: str,
) -> None:
    # A Host block per machine is looked up by name; a wildcard, a negation, another case
    # or a letter beyond ASCII must keep exactly the blocks the pattern-by-pattern scan keeps.
    lines = []
    for number, words in enumerate(hosts):
        if number in matches:
            lines.append("Match host x")
        lines.append("Host " + " ".join(words))
        lines.append(f"    Port {number + 1}")
    path = tmp_path_factory.mktemp("cfg") / "config"
    path.write_text("\n".join(lines) + "\n")
    reader = read_ssh_config(path)
    every = [b for i, b in enumerate(reader.blocks) if i == 0 or b.match or b.may_apply_to(alias)]
    assert reader.candidates(alias) == every
