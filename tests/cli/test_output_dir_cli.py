"""``--output-dir`` and ``-o lines`` as shell users use them: byte-exact files per machine
(secrets masked), names that never collide, ``machine: line`` streamed in order, and colour
only where it belongs. On this machine, the sandbox and a real sshd on loopback."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from tests.cli.conftest import FLEETRUN, CliRunner, Home, on_a_terminal
from tests.cli.test_ssh_cli import inventory
from tests.sshd import Sshd

CANARY = "canary-0e5b7d21-outdir-never-written"
BINARYISH = (
    'printf "bin\\000\\377\\033]0;title\\007\\r\\nsecret=%s\\n" "$TOKEN"; '
    'printf "err\\000%s" "$TOKEN" >&2'
)
EXPECTED_OUT = b"bin\x00\xff\x1b]0;title\x07\r\nsecret=***\n"
EXPECTED_ERR = b"err\x00***"
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def _no_canary_anywhere(*roots: Path) -> None:
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert CANARY.encode() not in path.read_bytes(), path


def test_files_are_byte_exact_masked_private_and_replace_what_was_there(
    cli: CliRunner, home: Home, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    first = cli("run", "--fleet", "local", "--shell", "true", "-o", "json",
                "--output-dir", str(out_dir))
    assert first.returncode == 0, first.stderr
    [machine] = json.loads(first.stdout)["machines"]
    name = machine["machine"]
    assert out_dir.stat().st_mode & 0o777 == 0o700
    assert (out_dir / f"{name}.out").read_bytes() == b""  # empty streams get files too
    # What a later run must replace, without following a link planted in the directory.
    (out_dir / f"{name}.out").write_bytes(b"old output, much longer than the new one\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"keep me")
    (out_dir / f"{name}.err").unlink()
    (out_dir / f"{name}.err").symlink_to(elsewhere)

    result = cli("run", "--fleet", "local", "--shell", BINARYISH, "-P", "TOKEN", "-o", "json",
                 "--output-dir", str(out_dir), env={"FLEETRUN_SECRET_TOKEN": CANARY})
    assert result.returncode == 0, result.stderr
    assert (out_dir / f"{name}.out").read_bytes() == EXPECTED_OUT
    assert (out_dir / f"{name}.err").read_bytes() == EXPECTED_ERR
    assert not (out_dir / f"{name}.err").is_symlink()
    assert elsewhere.read_bytes() == b"keep me"
    for path in out_dir.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path
    # The same bytes as the run's own store, which `show --full` copies out.
    run_id = json.loads(result.stdout)["run_id"]
    stored = subprocess.run([FLEETRUN, "show", run_id, name, "--full", "--stream", "stdout"],
                            capture_output=True, env=home.env(), timeout=60)
    assert stored.stdout == EXPECTED_OUT, stored.stderr
    assert CANARY not in result.stdout + result.stderr
    _no_canary_anywhere(home.data, home.config, out_dir)


def test_a_directory_that_cannot_be_used_is_one_line_and_exit_2(
    cli: CliRunner, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = cli("run", "--fleet", "local", "--shell", "true", "--output-dir", str(not_a_dir))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--output-dir" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


TWINS = """
[sandbox]
flush_interval = "200ms"
""" + "".join(f"""
[[machines]]
name = "twin"
kind = "vm"
os = "linux"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "{group}"
location = "westus2"
""" for group in ("rg-a", "rg-b"))


def test_machines_with_one_name_get_a_file_each(cli: CliRunner, tmp_path: Path) -> None:
    fleet = tmp_path / "twins.toml"
    fleet.write_text(TWINS)
    out_dir = tmp_path / "out"
    result = cli("run", "--fleet", f"sandbox:{fleet}", "--shell", "hostname; echo e >&2",
                 "-o", "json", "--output-dir", str(out_dir))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "twin.1.err", "twin.1.out", "twin.err", "twin.out"]
    for stem in ("twin", "twin.1"):
        assert (out_dir / f"{stem}.out").read_bytes() == b"twin\n"
        assert (out_dir / f"{stem}.err").read_bytes() == b"e\n"


UP_AND_DOWN = """
[sandbox]
flush_interval = "200ms"
""" + "".join(f"""
[[machines]]
name = "{name}"
kind = "vm"
os = "linux"
power = "{power}"
subscription = "33333333-3333-4333-8333-333333333333"
resource_group = "rg-a"
location = "westus2"
""" for name, power in (("up", "running"), ("down", "stopped")))


def test_only_machines_that_start_get_files(cli: CliRunner, tmp_path: Path) -> None:
    fleet = tmp_path / "up-and-down.toml"
    fleet.write_text(UP_AND_DOWN)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "down.out").write_bytes(b"from an earlier run\n")
    result = cli("run", "--fleet", f"sandbox:{fleet}", "--shell", "true", "-o", "json",
                 "--output-dir", str(out_dir))
    assert result.returncode == 1, result.stderr  # the stopped machine did not run
    states = {m["machine"]: m["state"] for m in json.loads(result.stdout)["machines"]}
    assert states["up"] == "Succeeded" and states["down"] != "Succeeded", states
    # The machine that ran has both files, empty; the one that never started has none,
    # and what an earlier run left for it is not touched.
    assert sorted(p.name for p in out_dir.iterdir()) == ["down.out", "up.err", "up.out"]
    assert (out_dir / "up.out").read_bytes() == b""
    assert (out_dir / "down.out").read_bytes() == b"from an earlier run\n"


def _machine_lines(text: str, name: str) -> list[str]:
    prefix = f"{name}: "
    return [line[len(prefix):] for line in text.splitlines() if line.startswith(prefix)]


def test_lines_stream_in_order_per_machine_with_partial_last_lines(
    cli: CliRunner, tmp_path: Path
) -> None:
    script = ('for i in $(seq 1 200); do echo "line $i"; done; echo "oops" >&2; '
              'printf "no line feed"; printf "\\033[2J" >&2')
    out_dir = tmp_path / "out"
    result = cli("run", "--target", "os:linux health:ready", "--shell", script, "-o", "lines",
                 "--output-dir", str(out_dir), timeout=180)
    assert result.returncode == 0, result.stderr
    names = {line.split(": ", 1)[0] for line in result.stdout.splitlines()}
    assert len(names) >= 10, result.stdout[:2000]
    expected = [f"line {i}" for i in range(1, 201)] + ["no line feed"]
    for name in names:
        assert _machine_lines(result.stdout, name) == expected, name
        assert _machine_lines(result.stderr, name) == ["oops", "␛[2J"], name
    assert "\x1b" not in result.stdout + result.stderr
    assert COLOUR.search(result.stdout) is None  # a pipe gets no colour
    # The files hold the bytes as they came, escape sequence and all.
    assert (out_dir / "queue-ss_0.err").read_bytes() == b"oops\n\x1b[2J"


def test_names_are_coloured_on_a_terminal_unless_no_color(cli: CliRunner, home: Home) -> None:
    args = ("run", "--fleet", "local", "--shell", "echo hello", "-o", "lines")
    on_terminal = on_a_terminal(home, *args)
    assert re.search(rb"\x1b\[36m[^\x1b]+:\x1b\[0m hello", on_terminal), on_terminal
    plain = on_a_terminal(home, *args, NO_COLOR="1")
    assert b"hello" in plain and not COLOUR.search(plain.decode()), plain
    forced = cli(*args, env={"FORCE_COLOR": "1"})
    assert COLOUR.search(forced.stdout), forced.stdout
    both = cli(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert not COLOUR.search(both.stdout) and both.stdout.endswith(": hello\n"), both.stdout


def test_ssh_output_dir_and_lines_are_exact_and_masked(
    cli: CliRunner, home: Home, sshd: Sshd, tmp_path: Path
) -> None:
    fake_home = home.config.parent / "home"
    fake_home.mkdir()
    out_dir = tmp_path / "out"
    result = cli("run", "--fleet", str(inventory(home, sshd)), "--accept-new-host-keys",
                 "--shell", BINARYISH + '; printf "a\\nb\\nc"', "-P", "TOKEN", "-o", "lines",
                 "--output-dir", str(out_dir),
                 env={"HOME": str(fake_home), "FLEETRUN_SECRET_TOKEN": CANARY})
    assert result.returncode == 0, result.stderr
    assert (out_dir / "loop-1.out").read_bytes() == EXPECTED_OUT + b"a\nb\nc"
    assert (out_dir / "loop-1.err").read_bytes() == EXPECTED_ERR
    assert _machine_lines(result.stdout, "loop-1") == [
        "bin␀\ufffd␛]0;title␇", "secret=***", "a", "b", "c"]
    assert _machine_lines(result.stderr, "loop-1") == ["err␀***"]
    assert CANARY not in result.stdout + result.stderr
    _no_canary_anywhere(home.data, home.config, out_dir, fake_home)


def test_an_interrupted_run_leaves_what_arrived_and_exits(home: Home, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    proc = subprocess.Popen(
        [FLEETRUN, "run", "--fleet", "local", "--shell", "echo before; exec sleep 300",
         "-o", "lines", "--output-dir", str(out_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=home.env())
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the line is printed once it arrived
        assert first.endswith(b": before\n"), first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    [written] = out_dir.glob("*.out")
    assert written.read_bytes() == b"before\n"
