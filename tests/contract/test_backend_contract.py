"""What every backend must do, as a user of :class:`core.backends.base.Backend` sees it.

The semantics are the Azure Linux managed run-command handler's (RunCommandHandlerLinux v2),
with fleetrun's documented improvements: exact argv values, whole-group kills, TimedOut and
Canceled states. Each test runs against every harness in ``conftest.HARNESSES``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import signal

import pytest

from core.errors import FleetrunError
from core.events import Finished, OutputAppended, StateChanged, TailUpdated, WaitChanged
from core.model import TAIL_BYTES, HealthStatus, Parameter, RunState, Stream, Waiting
from tests.contract.harness import BackendHarness, Result, command_lines, survivors

# --- states and exit codes -------------------------------------------------------------


async def test_running_first_then_one_finished_last(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("echo hello"))
    first, last = result.events[0], result.events[-1]
    # A service-backed run may first say it is Pending (submitted, not yet picked up).
    states = [e.state for e in result.events if isinstance(e, StateChanged)]
    assert isinstance(first, StateChanged)
    assert [s for s in states if s is not RunState.PENDING][:1] == [RunState.RUNNING]
    assert states.index(RunState.RUNNING) == len(
        [s for s in states[: states.index(RunState.RUNNING)] if s is RunState.PENDING]
    )
    assert isinstance(last, Finished)
    assert sum(isinstance(e, Finished) for e in result.events) == 1
    assert all(e.machine_id == harness.linux_machine().id for e in result.events)


async def test_exit_zero_succeeds(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("true"))
    finished = result.finished
    assert finished.state is RunState.SUCCEEDED
    if not harness.exit_codes:
        # No exit code to report: the result says so instead of passing off a 0.
        assert finished.exit_code is None
        assert "no exit code" in finished.error
    else:
        assert finished.exit_code == 0
        assert finished.error == ""
    assert finished.started is not None and finished.ended is not None
    assert finished.started <= finished.ended


async def test_nonzero_exit_fails_with_that_code(harness: BackendHarness) -> None:
    finished = (await harness.collect(harness.command("echo partial; exit 3"))).finished
    if not harness.exit_codes:
        _ran_without_exit_code(finished)
        return
    assert finished.state is RunState.FAILED
    assert finished.exit_code == 3
    assert "3" in finished.error


async def test_killed_by_a_signal_fails_with_minus_one(harness: BackendHarness) -> None:
    finished = (await harness.collect(harness.command("kill -KILL $$"))).finished
    if not harness.exit_codes:
        _ran_without_exit_code(finished)
        return
    assert finished.state is RunState.FAILED
    assert finished.exit_code == -1
    assert finished.error


def _ran_without_exit_code(finished: Finished) -> None:
    """What a backend without exit codes reports for a script that exited non-zero: it ran,
    and the result says that is all it knows."""
    assert finished.state is RunState.SUCCEEDED
    assert finished.exit_code is None
    assert "no exit code" in finished.error


# --- how the script runs ---------------------------------------------------------------


async def test_script_without_shebang_runs_under_bash(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command('printf "%s" "${BASH_VERSION:-none}"'))
    assert re.fullmatch(rb"\d+\.\d+.*", result.stdout), result.stdout


async def test_shebang_is_honoured(harness: BackendHarness) -> None:
    script = "#!/bin/cat\nthis file is printed by cat, not run\n"
    result = await harness.collect(harness.command(script))
    assert result.stdout == script.encode()


async def test_script_runs_verbatim_without_crlf_fix(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("printf '%s' ok\r\n"))
    # bash sees the CR as part of the word: proof that nobody turned CRLF into LF
    assert result.stdout == b"ok\r"


# --- output ----------------------------------------------------------------------------


async def test_stdout_and_stderr_are_separate(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("echo out; echo err >&2; echo out2"))
    assert result.stdout == b"out\nout2\n"
    assert result.stderr == b"err\n"


async def test_full_output_is_byte_exact(harness: BackendHarness) -> None:
    script = (
        "printf 'line one\\n'; printf 'two\\tparts\\r\\n'; printf '  spaced  \\n\\n'\n"
        "printf 'héllo ✓\\n' >&2; printf 'no newline at end'\n"
    )
    result = await harness.collect(harness.command(script))
    assert result.stdout == b"line one\ntwo\tparts\r\n  spaced  \n\nno newline at end"
    assert result.stderr == "héllo ✓\n".encode()


async def test_binary_output_is_intact(harness: BackendHarness) -> None:
    every_byte = "".join(f"\\{i:03o}" for i in range(256))
    script = f"printf '{every_byte}'; printf '{every_byte}' >&2"
    result = await harness.collect(harness.command(script))
    if not harness.full_output:
        # The tails travel as JSON text: bytes that are not UTF-8 become U+FFFD.
        text = bytes(range(256)).decode("utf-8", "replace").encode()
        assert (result.stdout, result.stderr) == (text, text)
        return
    assert result.stdout == bytes(range(256))
    assert result.stderr == bytes(range(256))


async def test_large_output_arrives_complete(harness: BackendHarness) -> None:
    size = 20_000_000
    script = f"head -c {size} /dev/zero | tr '\\0' x"
    result = await harness.collect(harness.command(script), keep_output=False)
    expected = hashlib.sha256()
    for _ in range(size // 1_000_000):
        expected.update(b"x" * 1_000_000)
    assert result.finished.state is RunState.SUCCEEDED
    if not harness.full_output:
        assert result.sizes[Stream.STDOUT] == TAIL_BYTES  # the last 4 KB is all there is
        assert result.tails[Stream.STDOUT] == b"x" * TAIL_BYTES
        assert "last 4,096 bytes" in result.finished.error
        return
    assert result.sizes[Stream.STDOUT] == size
    assert result.hashes[Stream.STDOUT].hexdigest() == expected.hexdigest()
    assert result.tails[Stream.STDOUT] == b"x" * TAIL_BYTES


# --- 4 KB tails ------------------------------------------------------------------------


async def test_tail_is_the_last_4096_bytes_of_each_stream(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("seq 1 3000; seq 5001 8000 >&2"))
    if not harness.full_output:
        expected = ("".join(f"{i}\n" for i in range(1, 3001)).encode()[-TAIL_BYTES:],
                    "".join(f"{i}\n" for i in range(5001, 8001)).encode()[-TAIL_BYTES:])
        assert (result.stdout, result.stderr) == expected
        assert (result.tails[Stream.STDOUT], result.tails[Stream.STDERR]) == expected
        return
    assert len(result.stdout) > 2 * TAIL_BYTES and len(result.stderr) > 2 * TAIL_BYTES
    assert result.tails[Stream.STDOUT] == result.stdout[-TAIL_BYTES:]
    assert result.tails[Stream.STDERR] == result.stderr[-TAIL_BYTES:]


async def test_short_output_tail_is_the_whole_output(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("echo short; echo also >&2"))
    assert result.tails[Stream.STDOUT] == b"short\n"
    assert result.tails[Stream.STDERR] == b"also\n"


async def test_tails_are_reported_before_finished(harness: BackendHarness) -> None:
    result = await harness.collect(harness.command("echo out"))
    finished_at = len(result.events) - 1
    tail_at = max(i for i, e in enumerate(result.events) if isinstance(e, TailUpdated))
    assert tail_at < finished_at
    assert result.tails[Stream.STDOUT] == b"out\n"
    assert result.tails.get(Stream.STDERR, b"") == b""


async def test_tail_is_cut_in_bytes_even_inside_a_character(harness: BackendHarness) -> None:
    # 2000 three-byte characters: 6000 bytes, and 6000 - 4096 is not a multiple of 3
    script = "for i in $(seq 2000); do printf '✓'; done"
    result = await harness.collect(harness.command(script))
    tail = result.tails[Stream.STDOUT]
    if not harness.full_output:
        # The output is the tail: cut in bytes by the handler, sent as text.
        assert result.stdout == tail
        assert tail == ("✓".encode() * 2000)[-TAIL_BYTES:].decode("utf-8", "replace").encode()
        return
    assert result.stdout == "✓".encode() * 2000
    if harness.tails_are_text:
        # Cut in bytes, then sent as JSON text: the broken first character becomes U+FFFD.
        assert tail == result.stdout[-TAIL_BYTES:].decode("utf-8", "replace").encode()
        assert tail.startswith("\ufffd".encode())
        return
    assert tail == result.stdout[-TAIL_BYTES:]
    assert 0x80 <= tail[0] <= 0xBF  # starts mid-character: bytes, not text
    with pytest.raises(UnicodeDecodeError):
        tail.decode("utf-8")


# --- parameters ------------------------------------------------------------------------


async def test_named_parameter_is_an_environment_variable(harness: BackendHarness) -> None:
    result = await harness.collect(
        harness.command('printf "%s|%s" "$GREETING" "$#"', Parameter("GREETING", "hello"))
    )
    # The action handler passes named values as positional arguments too.
    assert result.stdout == (b"hello|1" if harness.parameters_in_script else b"hello|0")


async def test_unnamed_parameters_are_positional_in_order(harness: BackendHarness) -> None:
    params = [Parameter("", v) for v in ("a", "b", "c")]
    result = await harness.collect(harness.command('printf \'%s|\' "$#" "$@"', *params))
    assert result.stdout == b"3|a|b|c|"


async def test_protected_named_parameter_is_an_environment_variable(
    harness: BackendHarness,
) -> None:
    param = Parameter("TOKEN", "s3cret", protected=True)
    result = await harness.collect(harness.command('printf "%s" "$TOKEN"', param))
    assert result.stdout == b"s3cret"


async def test_public_parameters_come_before_protected_ones(harness: BackendHarness) -> None:
    params = [
        Parameter("", "secret1", protected=True),
        Parameter("", "public1"),
        Parameter("", "secret2", protected=True),
        Parameter("", "public2"),
    ]
    result = await harness.collect(harness.command("printf '%s|' \"$@\"", *params))
    assert result.stdout == b"public1|public2|secret1|secret2|"


async def test_empty_named_parameter_is_not_set(harness: BackendHarness) -> None:
    name = f"FLEETRUN_EMPTY_{secrets.token_hex(4).upper()}"
    script = f'printf "%s" "${{{name}+set}}"; printf "|%s" "${{FULL+set}}"'
    params = (Parameter(name, ""), Parameter("FULL", "x"))
    result = await harness.collect(harness.command(script, *params))
    assert result.stdout == b"|set"


async def test_empty_unnamed_parameter_is_skipped(harness: BackendHarness) -> None:
    params = [Parameter("", "a"), Parameter("", ""), Parameter("", "b", protected=True)]
    result = await harness.collect(harness.command('printf \'%s|\' "$#" "$@"', *params))
    assert result.stdout == b"2|a|b|"


AWKWARD_VALUES = [
    "with space",
    "  leading and trailing  ",
    "it's",
    'say "hi"',
    "$HOME and ${PATH} and $(echo injected) and `echo injected`",
    "back\\slash\\n",
    "line1\nline2\n",
    "tab\there",
    "héllo ✓",
    "*",
    "; echo injected",
    "-n",
]


async def test_unnamed_values_arrive_byte_exact(harness: BackendHarness) -> None:
    if harness.unnamed_values_unquoted:
        # The handler's `bash -c "<script> v1 v2"`: the shell splits what it is given.
        params = [Parameter("", "with space"), Parameter("", "one")]
        result = await harness.collect(harness.command("printf '%s|' \"$@\"", *params))
        assert result.stdout == b"with|space|one|"
        return
    params = [Parameter("", v) for v in AWKWARD_VALUES]
    result = await harness.collect(harness.command("printf '%s\\0' \"$@\"", *params))
    assert result.stdout.split(b"\0")[:-1] == [v.encode() for v in AWKWARD_VALUES]


async def test_named_values_arrive_byte_exact(harness: BackendHarness) -> None:
    params = [Parameter(f"V{i}", v, protected=i % 2 == 1) for i, v in enumerate(AWKWARD_VALUES)]
    names = " ".join(f'"$V{i}"' for i in range(len(AWKWARD_VALUES)))
    result = await harness.collect(harness.command(f"printf '%s\\0' {names}", *params))
    assert result.stdout.split(b"\0")[:-1] == [v.encode() for v in AWKWARD_VALUES]


# --- no secret and no script on any command line ---------------------------------------


async def _command_lines_while_running(
    harness: BackendHarness, script: str, *params: Parameter
) -> tuple[list[bytes], bytes]:
    """Every command line on this machine, taken while ``script`` runs, and its stdout."""
    if not harness.full_output:
        # No output before the end: the command lines are sampled all through the run.
        running = harness.start(harness.command(script + "\necho ready; sleep 2", *params))
        seen: set[bytes] = set()
        while not running.task.done():
            seen.update(command_lines())
            await asyncio.sleep(0.05)
        return sorted(seen), (await running.finish()).stdout
    running = harness.start(harness.command(script + "\necho ready; sleep 30", *params))
    try:
        await running.wait_for("ready")
        return command_lines(), running.result.stdout
    finally:
        await harness.backend.cancel(harness.linux_machine(), running.run_id)
        await running.finish()


async def test_protected_value_is_on_no_command_line(harness: BackendHarness) -> None:
    secret = f"secret-{secrets.token_hex(12)}"
    lines, stdout = await _command_lines_while_running(
        harness, 'printf "len=%s\\n" "${#TOKEN}"', Parameter("TOKEN", secret, protected=True)
    )
    assert f"len={len(secret)}".encode() in stdout  # it did reach the script
    assert len(lines) > 1
    assert not [line for line in lines if secret.encode() in line]


async def test_script_text_is_on_no_command_line(harness: BackendHarness) -> None:
    marker = f"marker{secrets.token_hex(12)}"
    lines, stdout = await _command_lines_while_running(harness, f": {marker}")
    assert stdout == b"ready\n"
    assert not [line for line in lines if marker.encode() in line]


# --- what the script inherits ----------------------------------------------------------

PLANTED = ("FLEETRUN_SECRET_TOKEN", "FLEETRUN_SECRET_RUN_AS_PASSWORD", "AZURE_CLIENT_SECRET",
           "AZURE_STORAGE_KEY", "SSH_AUTH_SOCK")
"""Variables fleetrun's own environment may hold that are none of a script's business."""


async def test_the_script_sees_nothing_of_fleetruns_environment(
    harness: BackendHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = f"canary-{secrets.token_hex(8)}"
    for name in PLANTED:
        monkeypatch.setenv(name, canary)
    # /proc/$$/environ is what the script was started with, before bash adds its own.
    script = 'tr "\\0" "\\n" < /proc/$$/environ'
    result = await harness.collect(harness.command(script, Parameter("GREETING", "hi")))
    assert result.finished.state is RunState.SUCCEEDED, result.events
    names = {line.split(b"=", 1)[0] for line in result.stdout.splitlines()}
    assert canary.encode() not in result.stdout, sorted(names)
    assert not names & {n.encode() for n in PLANTED}
    if harness.parameters_in_script:
        # Exported by lines before the script, after the process started: not in environ.
        assert b"GREETING=hi" not in result.stdout.splitlines()
    else:
        assert b"GREETING=hi" in result.stdout.splitlines()
    assert {b"PATH", b"HOME"} <= names


# --- timeout and cancel ----------------------------------------------------------------

# The PIDs a script prints are checked in this machine's /proc: for every harness the
# script's processes live here (see harness.py).
PIDS_SCRIPT = 'sleep 300 & echo "child $!"; echo "main $$"; sleep 300'


def _pids(stdout: bytes) -> list[int]:
    return [int(p) for p in re.findall(rb"(?:child|main) (\d+)", stdout)]


async def _cannot_stop(harness: BackendHarness, how: str) -> None:
    """A backend that cannot stop a script: a timeout is the engine's (the backend runs to
    the script's end), a cancel says it cannot stop it and ends the run in fleetrun only,
    and a cancelled task leaves nothing behind in the backend."""
    if how == "timeout":
        result = await harness.collect(harness.command("sleep 2; echo done", timeout=1))
        assert result.finished.state is RunState.SUCCEEDED and result.stdout == b"done\n"
        return
    running = harness.start(harness.command("sleep 2; echo done"))
    await running.wait_running()
    if how == "task":
        running.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running.finish()
        assert not [e for e in running.result.events if isinstance(e, Finished)]
    else:
        with pytest.raises(FleetrunError, match="cannot cancel"):
            await harness.backend.cancel(harness.linux_machine(), running.run_id)
        finished = (await running.finish()).finished
        assert finished.state is RunState.CANCELED and "goes on" in finished.error
    await harness.backend.cancel(harness.linux_machine(), running.run_id)  # over: harmless


async def test_timeout_kills_the_script_and_its_children(harness: BackendHarness) -> None:
    if not harness.stops_scripts:
        await _cannot_stop(harness, "timeout")
        return
    result = await harness.collect(harness.command(PIDS_SCRIPT, timeout=2))
    finished = result.finished
    assert finished.state is RunState.TIMED_OUT
    assert finished.exit_code == -1
    assert "2" in finished.error
    # Not before the 2 s timeout; well before the harness gives up (RUN_LIMIT, 30 s) or the
    # script ends (300 s), with room for a loaded machine: ended by the timeout.
    assert 2 <= result.elapsed < 20
    pids = _pids(result.stdout)
    assert len(pids) == 2
    assert await survivors(pids) == []


async def test_cancelling_the_task_kills_everything(harness: BackendHarness) -> None:
    if not harness.stops_scripts:
        await _cannot_stop(harness, "task")
        return
    running = harness.start(harness.command(PIDS_SCRIPT))
    await running.wait_for(r"main \d+")
    pids = _pids(running.result.stdout)
    assert len(pids) == 2
    running.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running.finish()
    assert not [e for e in running.result.events if isinstance(e, Finished)]
    assert await survivors(pids) == []
    await harness.backend.cancel(harness.linux_machine(), running.run_id)  # harmless now


async def test_cancel_from_outside_ends_the_run_as_canceled(harness: BackendHarness) -> None:
    if not harness.stops_scripts:
        await _cannot_stop(harness, "cancel")
        return
    running = harness.start(harness.command(PIDS_SCRIPT))
    await running.wait_for(r"main \d+")
    pids = _pids(running.result.stdout)
    await harness.backend.cancel(harness.linux_machine(), running.run_id)
    result = await running.finish()
    assert result.finished.state is RunState.CANCELED
    assert isinstance(result.events[-1], Finished)
    assert await survivors(pids) == []
    await harness.backend.cancel(harness.linux_machine(), running.run_id)  # twice is fine


# A process that leaves the script's process group (setsid, or a double fork then setsid)
# is still the run's: a timeout or a cancel must reach it too.
ESCAPING_SCRIPT = (
    'setsid sleep 300 & echo "child $!"\n'
    '( setsid sleep 300 & echo "child $!" ) & wait "$!"\n'
    'echo "main $$"; sleep 300\n'
)


async def _gone(pids: list[int]) -> list[int]:
    """The PIDs still alive after a generous wait; those are killed, not left behind."""
    alive = await survivors(pids, within=10.0)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return alive


async def test_timeout_kills_processes_that_left_the_group(harness: BackendHarness) -> None:
    if not harness.stops_scripts:
        await _cannot_stop(harness, "timeout")
        return
    result = await harness.collect(harness.command(ESCAPING_SCRIPT, timeout=3))
    pids = _pids(result.stdout)
    alive = await _gone(pids)
    assert len(pids) == 3, result.stdout
    assert result.finished.state is RunState.TIMED_OUT
    assert alive == []


@pytest.mark.parametrize("how", ["cancel", "task"])
async def test_cancel_kills_processes_that_left_the_group(
    harness: BackendHarness, how: str
) -> None:
    if not harness.stops_scripts:
        await _cannot_stop(harness, how)
        return
    running = harness.start(harness.command(ESCAPING_SCRIPT))
    await running.wait_for(r"main \d+")
    pids = _pids(running.result.stdout)
    assert len(pids) == 3
    try:
        if how == "cancel":
            await harness.backend.cancel(harness.linux_machine(), running.run_id)
            assert (await running.finish()).finished.state is RunState.CANCELED
        else:
            running.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running.finish()
    finally:
        alive = await _gone(pids)
    assert alive == []


async def test_cancel_of_an_unknown_run_is_harmless(harness: BackendHarness) -> None:
    await harness.backend.cancel(harness.linux_machine(), "never-started")
    result = await harness.collect(harness.command("echo fine"))
    assert result.stdout == b"fine\n"


async def test_other_runs_survive_a_cancel(harness: BackendHarness) -> None:
    if not harness.parallel_runs:
        # One run per machine: the second waits Queued for the first, then runs.
        first = harness.start(harness.command("sleep 1; echo first"))
        await first.wait_running()
        second = await harness.collect(harness.command("echo second"))
        assert [e.waiting for e in second.events if isinstance(e, WaitChanged)][:1] == [
            Waiting.QUEUED]
        assert second.finished.state is RunState.SUCCEEDED and second.stdout == b"second\n"
        assert (await first.finish()).stdout == b"first\n"
        return
    victim = harness.start(harness.command("echo ready; sleep 30"))
    bystander = harness.start(harness.command("echo ready; sleep 1; echo done"))
    await victim.wait_for("ready")
    await bystander.wait_for("ready")
    await harness.backend.cancel(harness.linux_machine(), victim.run_id)
    assert (await victim.finish()).finished.state is RunState.CANCELED
    survivor = await bystander.finish()
    assert survivor.finished.state is RunState.SUCCEEDED
    assert survivor.stdout == b"ready\ndone\n"


# --- health ----------------------------------------------------------------------------


async def test_health_of_the_machine_is_ready(harness: BackendHarness) -> None:
    machine = harness.linux_machine()
    health = await harness.backend.check_health([machine])
    assert set(health) == {machine.id}
    assert health[machine.id].status is HealthStatus.READY


def test_harness_rejects_gaps_in_offsets() -> None:
    result = Result()
    result.add(OutputAppended("m", Stream.STDOUT, 0, b"ab"), keep_output=True)
    with pytest.raises(AssertionError, match="not contiguous"):
        result.add(OutputAppended("m", Stream.STDOUT, 3, b"c"), keep_output=True)
