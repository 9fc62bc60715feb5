"""What a machine prints, through the real `fleetrun`: protected values are masked before
anything is stored or shown, and escape sequences are printed inert.

The scripts run on this machine (``--fleet local``).
"""

from __future__ import annotations

import csv
import io
import json
import secrets
import subprocess
from pathlib import Path

from core.fanout import plan_run
from core.journal_store import Journal
from core.model import Command, CommandId, Machine, MachineKind, OsType, Parameter, RunState
from tests.cli.conftest import FLEETRUN, CliRunner, Home, on_a_terminal

SECRET = f"Prot-{secrets.token_hex(10)}-canary"
HALF = len(SECRET) // 2
CUT = 8
"""The stderr tail (the last 4096 bytes) starts this many bytes into the secret."""

FRAGMENTS = (SECRET, SECRET[:HALF], SECRET[HALF:], SECRET[CUT:])
"""Nothing may show the secret, nor either half of it, nor the end a 4 KB tail cut off."""

SECRET_SCRIPT = f"""
echo "whole: $TOKEN"
printf 'split-%s: %s' "$NONCE" "${{TOKEN:0:{HALF}}}"
# The second half is printed only once fleetrun has stored the line's start: the secret
# reaches it in two reads.
i=0
until grep -qs "split-$NONCE: " "$DATA"/runs/*/*.stdout; do
  i=$((i+1)); [ $i -gt 1200 ] && break; sleep 0.05
done
printf '%s\\n' "${{TOKEN:{HALF}}}"
printf '%s' "$TOKEN" >&2
head -c {4096 - (len(SECRET) - CUT)} /dev/zero | tr '\\0' x >&2
"""

ESCAPE_SCRIPT = r"""printf 'title \033]0;pwned\007 clip \033]52;c;ZXZpbA==\007 '
printf 'clear \033[2J\033[H red \033[31mred\033[0m\n'
printf 'lone\rreturn \302\233 c1 \342\200\256 bidi\r\n'
printf 'err \033[31mred\033[0m\n' >&2
exit 3
"""
RAW_STDOUT = (b"title \x1b]0;pwned\x07 clip \x1b]52;c;ZXZpbA==\x07 clear \x1b[2J\x1b[H red "
              b"\x1b[31mred\x1b[0m\nlone\rreturn \xc2\x9b c1 \xe2\x80\xae bidi\r\n")
UNSAFE = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def _leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return [f for f in FRAGMENTS if f in data]


def _run_secret(cli: CliRunner, home: Home, output: str, nonce: str
                ) -> subprocess.CompletedProcess[str]:
    result = cli("run", "--fleet", "local", "--shell", SECRET_SCRIPT, "-P", "TOKEN",
                 "-p", f"DATA={home.data}", "-p", f"NONCE={nonce}", "-o", output,
                 env={"FLEETRUN_SECRET_TOKEN": SECRET})
    assert result.returncode == 0, result.stderr
    return result


def test_a_protected_value_printed_whole_split_or_cut_reaches_no_screen_or_file(
        cli: CliRunner, home: Home) -> None:
    shown: list[str] = []
    as_json = _run_secret(cli, home, "json", "json")
    doc = json.loads(as_json.stdout)
    (machine,) = doc["machines"]
    assert machine["stdout"].startswith("whole: ***\nsplit-json: ***\n")
    assert machine["stderr"].startswith("***x")
    assert machine["masked"] == 3
    shown += [as_json.stdout, as_json.stderr]

    as_jsonl = _run_secret(cli, home, "jsonl", "jsonl")
    events = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    printed = "".join(e["data"] for e in events if e["event"] == "output"
                      and e["stream"] == "stdout")
    assert printed == "whole: ***\nsplit-jsonl: ***\n"
    tails = [e["tail"] for e in events if e["event"] == "tail" and e["stream"] == "stderr"]
    assert tails and tails[-1].startswith("***x")
    shown += [as_jsonl.stdout, as_jsonl.stderr]

    as_table = _run_secret(cli, home, "table", "table")
    assert "whole: ***" in as_table.stdout and "3 masked" in as_table.stdout
    shown += [as_table.stdout, as_table.stderr]

    run_id, name = doc["run_id"], machine["machine"]
    printed: dict[str, str] = {}
    for args in (["history"], ["show", run_id], ["show", run_id, "-o", "json"],
                 ["show", run_id, name], ["show", run_id, name, "-o", "json"],
                 ["show", run_id, name, "--full"],
                 ["show", run_id, name, "--full", "-o", "json"],
                 ["export", run_id, "--format", "json"], ["export", run_id, "--format", "csv"],
                 ["export", run_id, "--format", "md"]):
        result = cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        shown += [result.stdout, result.stderr]
        printed[" ".join({run_id: "RUN", name: "MACHINE"}.get(a, a) for a in args)] = (
            result.stdout)
    assert json.loads(printed["show RUN -o json"])["machines"][0]["masked"] == 3
    assert json.loads(printed["show RUN MACHINE -o json"])["masked"] == 3
    assert "3 masked" in printed["show RUN"]
    assert "masked: 3" in printed["show RUN MACHINE"]
    assert json.loads(printed["export RUN --format json"])["machines"][0]["masked"] == 3
    # One record, one redaction: every format holds the same machine, masked the same way.
    recorded = json.loads(printed["show RUN -o json"])["machines"][0]
    assert recorded == machine
    assert json.loads(printed["show RUN MACHINE -o json"]) == machine
    assert json.loads(printed["export RUN --format json"])["machines"][0] == machine
    (row,) = csv.DictReader(io.StringIO(printed["export RUN --format csv"]))
    assert row["masked"] == "3" and row["error"] == machine["error"]
    assert row["stdout_last_line"] == "split-json: ***"
    assert row["stderr_last_line"] == machine["stderr"]
    full = json.loads(printed["show RUN MACHINE --full -o json"])
    assert full["stdout"] == machine["stdout"] and full["stderr"].startswith("***x")
    assert "3 occurrences of protected values were masked" in printed["export RUN --format md"]

    for text in shown:
        assert not _leaks(text), text
    written = [p for p in home.data.rglob("*") if p.is_file()]
    assert any(p.suffix == ".stdout" for p in written)
    for path in written:
        assert not _leaks(path.read_bytes()), path
    stored = Path(machine["stdout_file"]).read_bytes()
    assert stored == b"whole: ***\nsplit-json: ***\n"
    assert machine["stdout_bytes"] == len(stored)


def test_escape_sequences_from_a_machine_are_printed_inert(cli: CliRunner, home: Home) -> None:
    run = cli("run", "--fleet", "local", "--shell", ESCAPE_SCRIPT, "-o", "table")
    assert run.returncode == 1, run.stderr
    as_json = cli("history", "-o", "json")
    run_id = json.loads(as_json.stdout)[0]["run_id"]
    recorded = json.loads(cli("show", run_id, "-o", "json").stdout)["machines"][0]
    name = recorded["machine"]
    # The file on disk keeps what the machine printed, byte for byte.
    assert Path(recorded["stdout_file"]).read_bytes() == RAW_STDOUT

    printed = {"run -o table": run.stdout}
    for what, args in (("show", ["show", run_id]), ("show MACHINE", ["show", run_id, name]),
                       ("export md", ["export", run_id, "--format", "md"]),
                       ("export csv", ["export", run_id, "--format", "csv"])):
        result = cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        printed[what] = result.stdout
    printed["show --full (terminal)"] = on_a_terminal(
        home, "show", run_id, name, "--full").decode("utf-8", "replace")
    for what, text in printed.items():
        for char in UNSAFE:
            assert char not in text.replace("\r\n", "\n"), (what, char, text)
    assert "␛]0;pwned␇" in printed["run -o table"]
    assert "␛]52;c;ZXZpbA==␇" in printed["show MACHINE"]
    assert "lone␍return" in printed["show --full (terminal)"]

    # Piped, or forced with --raw, the full output is the bytes as they came.
    piped = subprocess.run([FLEETRUN, "show", run_id, name, "--full", "--stream", "stdout"],
                           capture_output=True, env=home.env(), stdin=subprocess.DEVNULL,
                           timeout=60)
    assert piped.stdout == RAW_STDOUT
    raw = on_a_terminal(home, "show", run_id, name, "--full", "--stream", "stdout", "--raw")
    assert b"\x1b]0;pwned\x07" in raw

    # JSON keeps the text, escaped: nothing in it drives a terminal either.
    for args in (["show", run_id, "-o", "json"], ["export", run_id, "--format", "json"]):
        text = cli(*args).stdout
        assert not any(char in text for char in UNSAFE), args
    assert recorded["stdout"] == RAW_STDOUT.decode()


def test_attach_asks_for_the_protected_values_again(cli: CliRunner, home: Home) -> None:
    """What a run taken up again prints is masked too: the journal never had the values."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    machine = Machine(id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/"
                      "virtualMachines/vm1", name="vm1", kind=MachineKind.VM, os=OsType.LINUX)
    command = Command(CommandId.SHELL, "echo $TOKEN; sleep 600",
                      parameters=(Parameter("TOKEN", SECRET, protected=True),))
    run = plan_run([(machine, command)], fleet="azure")
    run.pid = gone.pid  # the process that followed it is gone: the run is interrupted
    run.machines[machine.id].state = RunState.RUNNING
    with Journal(home.data / "journal.sqlite3") as journal:
        journal.record_run(run)

    refused = cli("attach", run.run_id)
    assert refused.returncode == 2, refused.stderr
    assert "TOKEN" in refused.stderr and "FLEETRUN_SECRET_TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Given the value, it goes on (here to find that no Azure is configured).
    given = cli("attach", run.run_id, env={"FLEETRUN_SECRET_TOKEN": SECRET})
    assert "FLEETRUN_SECRET_TOKEN" not in given.stderr and "Traceback" not in given.stderr
