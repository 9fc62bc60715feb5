"""``--connect-timeout``: every SSH host's time to connect and log in, from the command line."""

from __future__ import annotations

import json
import socket

from tests.cli.conftest import CliRunner, Home


def test_connect_timeout_bounds_a_host_that_never_answers(cli: CliRunner, home: Home) -> None:
    with socket.socket() as silent:  # accepts TCP (the kernel's backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        hosts = home.config.parent / "hosts.toml"
        hosts.write_text(f'[[hosts]]\nname = "mute"\nhost = "127.0.0.1"\nport = {port}\n')
        result = cli("run", "--fleet", str(hosts), "--shell", "true", "--connect-timeout",
                     "1.5", "-o", "json")
    assert result.returncode == 1, result.stderr
    [machine] = json.loads(result.stdout)["machines"]
    assert "no answer within 1.5 s" in machine["error"], machine


def test_a_bad_connect_timeout_is_one_line(cli: CliRunner) -> None:
    for args in (("machines", "--connect-timeout", "soon"), ("machines", "--connect-timeout=0"),
                 ("run", "--connect-timeout", "nan"), ("--connect-timeout", "-3")):
        result = cli(*args)
        assert result.returncode == 2, result.stderr
        assert "--connect-timeout" in result.stderr and "seconds" in result.stderr
        assert "Traceback" not in result.stderr
