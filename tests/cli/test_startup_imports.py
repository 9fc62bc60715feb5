"""What ``fleetrun`` loads before it does anything (only what the command in hand uses),
and what an SSH run writes to its log.

Start-up time is a benchmark's business (bench/ssh prints it); these tests hold the
behaviour behind it, read from Python's own import log (``-X importtime``): ``--help``
loads no subcommand's runtime (the app, SSH, HTTP, tables), and a run on SSH hosts loads
no Azure module and no HTTP stack.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tui.cli
from tests.cli.conftest import CliRunner, Home
from tests.sshd import Sshd
from tui.cli.parser import SUBCOMMANDS, build_parser, subcommand_parser

NEVER_FOR_HELP = ("textual", "asyncssh", "httpx", "rich", "core.azure.arm", "core.fanout",
                  "tui.cli.run", "tui.app")
NEVER_FOR_AN_SSH_RUN = ("textual", "httpx", "core.azure.arm", "core.azure.blob", "tui.app",
                        "core.library",
                        "tui.cli.builtins", "tui.cli.commands")


def imported(stderr: str) -> set[str]:
    """The modules a ``-X importtime`` process imported, from its import log."""
    return {line.split("|")[2].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_help_loads_no_subcommand_runtime(cli: CliRunner) -> None:
    result = cli("--help", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0, result.stderr
    assert "run a script on many machines" in result.stdout  # every subcommand still listed
    modules = imported(result.stderr)
    assert "tui.cli.parser" in modules  # the log is read at all
    assert not modules & set(NEVER_FOR_HELP), sorted(modules & set(NEVER_FOR_HELP))


def test_a_subcommands_help_is_complete(cli: CliRunner) -> None:
    result = cli("run", "--help")
    assert result.returncode == 0, result.stderr
    assert "--shell" in result.stdout and "--hosts" in result.stdout


def test_a_run_on_ssh_hosts_loads_no_azure_client(cli: CliRunner, home: Home,
                                                  sshd: Sshd) -> None:
    result = cli("run", "--hosts", f"127.0.0.1:{sshd.port}", "-l", sshd.user,
                 "-i", str(sshd.client_key), "--accept-new-host-keys",
                 "--shell", "echo hi", "-o", "json",
                 env={"PYTHONPROFILEIMPORTTIME": "1",
                      "HOME": str(home.config.parent / "home")}, timeout=120)
    assert result.returncode == 0, result.stderr
    [machine] = json.loads(result.stdout)["machines"]
    assert machine["stdout"] == "hi\n"
    modules = imported(result.stderr)
    assert "asyncssh" in modules
    assert not modules & set(NEVER_FOR_AN_SSH_RUN), sorted(modules & set(NEVER_FOR_AN_SSH_RUN))
    azure = sorted(m for m in modules if m == "core.azure" or m.startswith("core.azure."))
    assert not azure, azure  # not even the settings or the throttle budget's display


def test_each_subcommand_is_listed_with_its_own_help() -> None:
    """The one-line help ``fleetrun --help`` shows without the module is the module's."""
    parser = build_parser()
    for subcommand in SUBCOMMANDS:
        [listed] = [a for a in _choices(parser) if a.dest == subcommand.name]
        subcommand_parser(parser, subcommand.name)  # the module's own add_parser ran
        [own] = [a for a in _choices(parser) if a.dest == subcommand.name]
        assert listed.help == own.help == subcommand.help
        full = subcommand_parser(parser, subcommand.name)
        assert len(full._actions) > 1, subcommand  # more than its -h: the module's options


def _choices(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub._get_subactions())


def test_an_ssh_run_logs_no_per_host_chatter_of_the_ssh_library(cli: CliRunner, home: Home,
                                                                 sshd: Sshd) -> None:
    """asyncssh's INFO lines (a dozen per host, the bootstrap's whole command line among
    them) stay out of fleetrun's log; per host they cost CPU and kilobytes."""
    result = cli("run", "--hosts", f"127.0.0.1:{sshd.port}", "-l", sshd.user,
                 "-i", str(sshd.client_key), "--accept-new-host-keys",
                 "--shell", "echo hi", "-o", "json",
                 env={"HOME": str(home.config.parent / "home")}, timeout=120)
    assert result.returncode == 0, result.stderr
    log = (home.data / "fleetrun.log").read_text()
    assert "INFO asyncssh" not in log, log[:2000]


def test_every_subcommand_module_is_in_the_table() -> None:
    """A module under tui/cli that defines a subcommand but is missing from SUBCOMMANDS
    would silently vanish from ``fleetrun``."""
    folder = Path(tui.cli.__file__).parent
    defining = {f"tui.cli.{path.stem}" for path in folder.glob("*.py")
                if "\ndef add_parser(sub: Subparsers)" in path.read_text(encoding="utf-8")}
    assert defining == {subcommand.module for subcommand in SUBCOMMANDS}
