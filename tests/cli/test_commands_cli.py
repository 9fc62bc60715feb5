"""Saved commands from the command line: ``commands list|show`` and ``run --command``."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import FLEETRUN, CliRunner, Home

CANARY = "canary-5e1f-never-written"

FLEET = """
[sandbox]
flush_interval = "0.2s"

[[machines]]
name = "lab-{n}"
count = 3
kind = "vm"
os = "linux"
subscription = "66666666-6666-4666-8666-666666666666"
resource_group = "rg-cmd"
location = "westeurope"
"""

GREET = """
name = "greet"
description = "Say hello; check the token arrived"
tags = ["demo"]
timeout = 30

[[parameters]]
name = "greeting"
required = true
choices = ["hi", "hello"]

[[parameters]]
name = "who"
default = "world"
pattern = '^[a-z]+$'

[[parameters]]
name = "token"
protected = true
required = true

[scripts]
shell = '''
# Exit code: 0 always.
echo "$greeting $who from $HOSTNAME (token: ${#token} chars)"
'''
"""

WIPE = """
name = "wipe"
description = "Pretends to change state"
dangerous = true

[scripts]
shell = '''
# Exit code: 0 always.
echo "changed $HOSTNAME"
'''
"""


@pytest.fixture
def fleet(tmp_path: Path) -> str:
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET)
    return f"sandbox:{path}"


def save(home: Home, name: str, text: str) -> Path:
    directory = home.config / "commands"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def everything_written(home: Home) -> str:
    """Every file fleetrun wrote (journal, run outputs, logs, config), as one text."""
    texts = []
    for root in (home.data, home.config):
        for path in root.rglob("*"):
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_list_shows_starters_and_user_commands_and_names_broken_files(
        cli: CliRunner, home: Home) -> None:
    save(home, "greet.toml", GREET)
    save(home, "tcp.toml", 'name = "tcp-check"\ndescription = "mine"\n[scripts]\nshell = "true"\n')
    broken = save(home, "broken.toml", GREET.replace('pattern = ', 'patern = '))
    result = cli("commands", "list", "-o", "json")
    assert result.returncode == 0, result.stderr
    listed = {c["name"]: c for c in json.loads(result.stdout)}
    assert len(listed) >= 21
    assert listed["greet"]["source"] == "user" and listed["greet"]["os"] == ["linux"]
    assert listed["greet"]["parameters"] == ["greeting", "who", "token"]
    assert listed["tcp-check"]["description"] == "mine" and listed["tcp-check"]["overrides_starter"]
    assert listed["disk-usage"]["source"] == "starter"
    assert listed["disk-usage"]["os"] == ["linux", "windows"]
    assert listed["restart-service"]["dangerous"] is True
    assert f"{broken}: parameters[1].patern: unknown field" in result.stderr

    table = cli("commands", "list")
    assert table.returncode == 0
    assert "greet" in table.stdout and "dangerous" in table.stdout
    assert str(broken) in table.stderr
    assert "fleetrun commands builtin" in table.stdout  # Azure's built-ins, beside them


def test_show_has_everything_scripts_included(cli: CliRunner) -> None:
    result = cli("commands", "show", "cert-expiry", "-o", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["name"] == "cert-expiry" and shown["source"] == "starter"
    assert "openssl s_client" in shown["scripts"]["shell"]
    assert "SslStream" in shown["scripts"]["powershell"]
    server = next(p for p in shown["parameters"] if p["name"] == "server")
    assert server["required"] is True and server["pattern"]

    table = cli("commands", "show", "cert-expiry")
    assert "openssl s_client" in table.stdout and "SslStream" in table.stdout
    assert "run it: fleetrun run --command cert-expiry -p server=VALUE" in table.stdout


def test_show_an_unknown_name_suggests_close_ones(cli: CliRunner) -> None:
    result = cli("commands", "show", "cert-expiri")
    assert result.returncode == 2
    assert "no saved command 'cert-expiri' (did you mean cert-expiry?)" in result.stderr


def test_run_a_saved_command_with_its_parameters_and_a_protected_one(
        cli: CliRunner, home: Home, fleet: str) -> None:
    save(home, "greet.toml", GREET)
    result = cli("run", "--fleet", fleet, "--command", "greet", "-p", "greeting=hi",
                 "-P", "token", "-o", "json", env={"FLEETRUN_SECRET_token": CANARY})
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert sorted(m["stdout"] for m in run["machines"]) == [
        f"hi world from lab-{n} (token: {len(CANARY)} chars)\n" for n in (1, 2, 3)]
    assert run["command"]["timeout"] == 30
    assert CANARY not in result.stdout + result.stderr
    assert CANARY not in everything_written(home)


def test_positional_values_fill_the_unnamed_parameters_in_order(
        cli: CliRunner, home: Home, fleet: str) -> None:
    save(home, "greet.toml", GREET)
    result = cli("run", "--fleet", fleet, "--target", "name:lab-1", "--command", "greet",
                 "-a", "hello", "-a", "there", "-o", "json",
                 env={"FLEETRUN_SECRET_token": "x"})
    assert result.returncode == 0, result.stderr
    (machine,) = json.loads(result.stdout)["machines"]
    assert machine["stdout"] == "hello there from lab-1 (token: 1 chars)\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-P", "token"], "parameter 'greeting': is required; give a value"),
        (["-p", "greeting=yo", "-P", "token"],
         "parameter 'greeting': 'yo' is not allowed; use one of hi, hello"),
        (["-p", "greeting=hi", "-p", "who=X1", "-P", "token"],
         "parameter 'who': 'X1' is not allowed; use a value matching ^[a-z]+$"),
        (["-p", "greeting=hi", "-p", "nope=1", "-P", "token"],
         "parameter 'nope': is not a parameter of this command; it takes greeting, who, token"),
        (["-p", "greeting=hi", "-p", f"token={CANARY}"],
         "-p token: 'token' is a protected parameter of greet; give it with -P token"),
        (["-p", "greeting=hi", "--shell", "echo"], "leave out --shell/--powershell"),
        (["-a", "hi", "-a", "a", "-a", "b", "-P", "token"],
         "-a: 3 value(s) given but greet has 2 parameter(s) left to fill (greeting, who)"),
    ],
)
def test_bad_parameters_are_errors_naming_the_parameter(
        cli: CliRunner, home: Home, fleet: str, args: list[str], message: str) -> None:
    save(home, "greet.toml", GREET)
    result = cli("run", "--fleet", fleet, "--command", "greet", *args,
                 env={"FLEETRUN_SECRET_token": "t"})
    assert result.returncode == 2
    assert message in result.stderr
    assert CANARY not in result.stderr
    assert cli("history", "-o", "json").stdout.strip() == "[]", "nothing ran"


def test_a_required_secret_without_a_terminal_or_environment_is_named(
        cli: CliRunner, home: Home, fleet: str) -> None:
    save(home, "greet.toml", GREET)
    result = cli("run", "--fleet", fleet, "--command", "greet", "-p", "greeting=hi")
    assert result.returncode == 2
    assert "-P token: no terminal to ask for the value; set FLEETRUN_SECRET_token" in (
        result.stderr)


def test_a_dangerous_command_needs_yes_without_a_terminal(
        cli: CliRunner, home: Home, fleet: str) -> None:
    save(home, "wipe.toml", WIPE)
    refused = cli("run", "--fleet", fleet, "--command", "wipe", "-o", "json")
    assert refused.returncode == 2
    assert "it is dangerous (it changes state) and would run on 3 machine(s) (3 linux)" in (
        refused.stderr)
    assert "add --yes" in refused.stderr
    assert cli("history", "-o", "json").stdout.strip() == "[]", "nothing ran"

    done = cli("run", "--fleet", fleet, "--command", "wipe", "--yes", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert "--yes: running dangerous command wipe on 3 machine(s)" in done.stderr
    assert len(json.loads(done.stdout)["machines"]) == 3


def test_a_dangerous_commands_confirmation_says_why_machines_will_be_skipped(
        cli: CliRunner, home: Home) -> None:
    save(home, "wipe.toml", WIPE)
    refused = cli("run", "--fleet", "sandbox", "--target", "kind:arc os:linux",
                  "--command", "wipe")
    assert refused.returncode == 2
    # The sandbox's Linux Arc servers: three Ready, three kept off, each for its own reason.
    assert ("would run on 3 machine(s) (3 linux); 3 more will be skipped (1 AgentTooOld, "
            "1 Blocked, 1 Disconnected)") in refused.stderr
    assert cli("history", "-o", "json").stdout.strip() == "[]", "nothing ran"


def run_on_a_terminal(home: Home, args: list[str], typed: str) -> subprocess.CompletedProcess[str]:
    """Run fleetrun with a pseudo-terminal as stdin, typing ``typed`` into it."""
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([FLEETRUN, *args], stdin=terminal, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=home.env())
        os.write(controller, typed.encode())
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_a_dangerous_command_on_a_terminal_runs_only_when_the_count_is_typed(
        cli: CliRunner, home: Home, fleet: str) -> None:
    save(home, "wipe.toml", WIPE)
    args = ["run", "--fleet", fleet, "--command", "wipe", "-o", "json"]
    wrong = run_on_a_terminal(home, args, "y\n")
    assert wrong.returncode == 2
    assert "It would run on 3 machine(s) (3 linux).\nType 3 to run it" in wrong.stderr
    assert "not confirmed (expected 3); nothing was run" in wrong.stderr
    assert cli("history", "-o", "json").stdout.strip() == "[]"

    right = run_on_a_terminal(home, args, "3\n")
    assert right.returncode == 0, right.stderr
    assert sorted(m["stdout"] for m in json.loads(right.stdout)["machines"]) == [
        f"changed lab-{n}\n" for n in (1, 2, 3)]


def test_a_broken_file_does_not_stop_a_run_of_another_command(
        cli: CliRunner, home: Home, fleet: str) -> None:
    broken = save(home, "broken.toml", "name = [\n")
    result = cli("run", "--fleet", fleet, "--target", "name:lab-2", "--command", "os-info",
                 "-o", "json")
    assert result.returncode == 0, result.stderr
    assert f"warning: skipped saved command: {broken}: not valid TOML" in result.stderr
    (machine,) = json.loads(result.stdout)["machines"]
    assert "Hostname:  lab-2" in machine["stdout"]


def test_a_command_without_a_script_for_a_selected_os_says_how_to_leave_them_out(
        cli: CliRunner, home: Home, tmp_path: Path) -> None:
    save(home, "wipe.toml", WIPE)
    path = tmp_path / "mixed.toml"
    path.write_text(FLEET + '\n[[machines]]\nname = "win-1"\nkind = "vm"\nos = "windows"\n'
                    'subscription = "66666666-6666-4666-8666-666666666666"\n'
                    'resource_group = "rg-cmd"\nlocation = "westeurope"\n')
    result = cli("run", "--fleet", f"sandbox:{path}", "--command", "wipe", "--yes")
    assert result.returncode == 2
    assert ("--command wipe: 1 windows machine(s) selected but it has no powershell script: "
            "win-1; leave them out with --target '!os:windows'") in result.stderr


def test_history_names_the_saved_command_and_finds_runs_by_it(
        cli: CliRunner, home: Home, fleet: str) -> None:
    save(home, "greet.toml", GREET)
    saved = cli("run", "--fleet", fleet, "--command", "greet", "-p", "greeting=hi", "-P",
                "token", "-o", "json", env={"FLEETRUN_SECRET_token": CANARY})
    adhoc = cli("run", "--fleet", fleet, "--shell", "echo plain", "-o", "json")
    assert saved.returncode == 0 and adhoc.returncode == 0, saved.stderr + adhoc.stderr
    doc = json.loads(saved.stdout)
    assert doc["saved_command"]["name"] == "greet"
    assert doc["saved_command"]["hash"].startswith("sha256:")
    assert json.loads(adhoc.stdout)["saved_command"] is None

    found = json.loads(cli("history", "--grep", "GREET", "--since", "today", "-o",
                           "json").stdout)
    assert [r["run_id"] for r in found] == [doc["run_id"]]
    assert "greet #" in cli("history", "--grep", "greet").stdout
    assert json.loads(cli("history", "--until", "2000-01-01", "-o", "json").stdout) == []

    bad = cli("history", "--since", "last tuesday")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "--since: 'last tuesday' is not a date; use YYYY-MM-DD" in bad.stderr
