"""The SSH bootstrap, run by a local bash exactly as sshd would start it, fed its frame.

The contract suite runs it through a real sshd; these tests reach the corners that are
awkward over SSH: scripts that take the ``file`` path, a frame cut short, the client's end
of stdin closing mid-run, and the locale the frame is read in.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.backends.ssh_bootstrap import BOOTSTRAP_FAILURE, INLINE_MAX, frame, run_command_line
from core.model import Command, CommandId, Parameter

SELF_PRINT = "cat ./script.sh\n"


def start(tmp_path: Path, command: Command, *, env: dict[str, str] | None = None,
          timeout: int = 60) -> subprocess.Popen[bytes]:
    base = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    # A token of its own, as every run has: a stopped run's sweep must not reach the next.
    token = f"t{secrets.token_hex(6)}"
    return subprocess.Popen(["bash", "-c", run_command_line(token, timeout)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=base | (env or {}),
                            start_new_session=True)


def run(tmp_path: Path, command: Command, *,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """One run to its end, stdin held open meanwhile, as the client holds it."""
    process = start(tmp_path, command, env=env)
    assert process.stdin is not None
    process.stdin.write(frame(command))
    process.stdin.flush()
    stdout, stderr = _drain(process)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _drain(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    assert process.stdout is not None and process.stderr is not None
    stdout = process.stdout.read()  # until the script's end closes its stdout
    stderr = process.stderr.read()
    process.wait(timeout=30)
    assert process.stdin is not None
    process.stdin.close()
    return stdout, stderr


def shell(script: str, *parameters: Parameter) -> Command:
    return Command(CommandId.SHELL, script, parameters)


def test_a_small_script_arrives_byte_for_byte_with_its_trailing_newlines(
        tmp_path: Path) -> None:
    script = SELF_PRINT + "# héllo € \\ $HOME 'q' \"d\"\n\n\n"
    result = run(tmp_path, shell(script), env={"LANG": "C.UTF-8"})
    assert result.returncode == 0, result.stderr
    assert result.stdout == script.encode()


@pytest.mark.parametrize("script", [
    SELF_PRINT + "#" + "x" * (INLINE_MAX + 10) + "\n",
    SELF_PRINT + "# a NUL \0 in a comment\n",
], ids=["larger-than-inline", "with-a-nul"])
def test_scripts_the_builtin_cannot_read_take_the_file_path_intact(
        tmp_path: Path, script: str) -> None:
    assert b"\0file\0" in frame(shell(script))
    result = run(tmp_path, shell(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout == script.encode()


@pytest.mark.parametrize("script", ["touch ran; rm -rf ./x\n", "#" * (INLINE_MAX + 1) + "\n"],
                         ids=["inline", "file"])
def test_a_script_cut_short_never_runs(tmp_path: Path, script: str) -> None:
    command = shell("touch ran\n" + script)
    process = start(tmp_path, command)
    _, stderr = process.communicate(frame(command)[:-5], timeout=30)
    assert process.returncode == BOOTSTRAP_FAILURE
    assert b"cut short" in stderr
    assert not (tmp_path / "ran").exists()
    assert not list(tmp_path.glob("fleetrun-*")), "the run folder is left behind"


def test_the_script_sees_the_callers_locale_and_its_parameters_unchanged(
        tmp_path: Path) -> None:
    script = 'printf "%s|%s|%s\\n" "${LC_ALL-unset}" "$LANG" "$1"'
    unset = run(tmp_path, shell(script, Parameter("", "é €")), env={"LANG": "C.UTF-8"})
    assert unset.stdout.decode() == "unset|C.UTF-8|é €\n"
    kept = run(tmp_path, shell(script, Parameter("", "x")), env={"LC_ALL": "C.UTF-8"})
    assert kept.stdout.decode().startswith("C.UTF-8|")
    named = run(tmp_path, shell(script, Parameter("LC_ALL", "POSIX")))
    assert named.stdout.decode().startswith("POSIX|")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


@pytest.mark.parametrize("how", ["eof", "byte"])
def test_stdin_ending_or_a_byte_on_it_kills_the_whole_process_group(
        tmp_path: Path, how: str) -> None:
    command = shell("sleep 300 &\necho $!\nsleep 300\n")
    process = start(tmp_path, command)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(frame(command))
    process.stdin.flush()
    child = int(process.stdout.readline())
    assert _pid_alive(child)
    if how == "byte":
        process.stdin.write(b"k")
        process.stdin.flush()
    else:
        process.stdin.close()
    process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while _pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(child), "a process the script started outlived it"
    assert not list(tmp_path.glob("fleetrun-*")), "the run folder is left behind"


def _wait_gone(pids: list[int], within: float = 10.0) -> list[int]:
    """The PIDs still alive after ``within`` seconds; they are killed, not left behind."""
    deadline = time.monotonic() + within
    while (alive := [p for p in pids if _pid_alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    return alive


ESCAPING = ('setsid sleep 300 & echo $!\n( setsid sleep 300 & echo $! ) & wait "$!"\n'
            'echo up\nsleep 300\n')


@pytest.mark.parametrize("how", ["eof", "byte", "timeout"])
def test_processes_that_left_the_group_are_killed_too(tmp_path: Path, how: str) -> None:
    command = shell(ESCAPING)
    process = start(tmp_path, command, timeout=2 if how == "timeout" else 60)
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(frame(command))
    process.stdin.flush()
    escaped = [int(process.stdout.readline()), int(process.stdout.readline())]
    assert process.stdout.readline() == b"up\n"
    if how == "byte":
        process.stdin.write(b"k")
        process.stdin.flush()
    elif how == "eof":
        process.stdin.close()
    process.wait(timeout=30)
    assert _wait_gone(escaped) == [], "a process that left the group outlived the run"
    assert process.returncode == -signal.SIGKILL


def test_while_stdin_stays_open_the_script_runs_to_its_end(tmp_path: Path) -> None:
    result = run(tmp_path, shell("sleep 0.4; echo done; exit 7"))
    assert (result.returncode, result.stdout) == (7, b"done\n")
