"""LocalBackend specifics the shared contract suite (tests/contract) does not cover."""

from __future__ import annotations

import asyncio
import os
import pwd
import re
import signal
import time
import tracemalloc
from pathlib import Path

import pytest

from core.backends import local
from core.backends.base import Backend
from core.backends.local import LocalBackend
from core.events import Finished, MachineEvent, OutputAppended, TailUpdated
from core.inventory.local import local_machine
from core.model import (
    Command,
    CommandId,
    HealthStatus,
    MachineKind,
    OsType,
    Parameter,
    RunState,
    Stream,
)
from tests.contract.harness import survivors

MACHINE = local_machine()


def shell(script: str, *params: Parameter, **kw: object) -> Command:
    return Command(CommandId.SHELL, script, parameters=params, **kw)  # type: ignore[arg-type]


async def events_of(backend: LocalBackend, command: Command) -> list[MachineEvent]:
    async with asyncio.timeout(30):
        return [e async for e in backend.run(MACHINE, command, run_id="r1")]


def stdout_of(events: list[MachineEvent]) -> bytes:
    return b"".join(
        e.data for e in events if isinstance(e, OutputAppended) and e.stream == "stdout"
    )


def finished_of(events: list[MachineEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished)
    return last


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(work_dir=tmp_path)


def test_local_machine_and_protocol() -> None:
    machine = local_machine()
    assert (machine.id, machine.kind, machine.os) == ("local", MachineKind.LOCAL, OsType.LINUX)
    assert machine.health.status is HealthStatus.READY
    assert isinstance(LocalBackend(), Backend)


async def test_powershell_fails_with_a_clear_message(backend: LocalBackend) -> None:
    events = await events_of(backend, Command(CommandId.POWERSHELL, "Write-Output hi"))
    finished = finished_of(events)
    assert finished.state is RunState.FAILED
    assert "RunShellScript" in finished.error and "RunPowerShellScript" in finished.error
    assert not [e for e in events if isinstance(e, OutputAppended)]


async def test_private_working_dir_is_cwd_and_removed(
    backend: LocalBackend, tmp_path: Path
) -> None:
    script = 'stat -c %a "$PWD" "$0"; [ "$(dirname "$0")" = "$PWD" ] && basename "$0"'
    events = await events_of(backend, shell(script))
    assert stdout_of(events) == b"700\n500\nscript.sh\n"
    assert list(tmp_path.iterdir()) == []


async def test_stdin_is_empty(backend: LocalBackend) -> None:
    events = await events_of(backend, shell('read -r line; echo "rc=$?"', timeout=5))
    assert stdout_of(events) == b"rc=1\n"


async def test_background_children_of_a_finished_script_are_killed(
    backend: LocalBackend,
) -> None:
    events = await events_of(backend, shell('sleep 300 & echo "child $!"'))
    assert finished_of(events).state is RunState.SUCCEEDED
    (pid,) = [int(p) for p in re.findall(rb"child (\d+)", stdout_of(events))]
    assert await survivors([pid]) == []


async def test_an_escaped_process_holding_the_pipes_does_not_hang_the_run(
    backend: LocalBackend,
) -> None:
    began = time.monotonic()
    events = await events_of(backend, shell('setsid sleep 30 & echo "escaped $!"'))
    elapsed = time.monotonic() - began
    (pid,) = [int(p) for p in re.findall(rb"escaped (\d+)", stdout_of(events))]
    os.kill(pid, signal.SIGKILL)  # it left our process group: nobody else will
    assert finished_of(events).state is RunState.SUCCEEDED
    assert elapsed < 3


async def test_tail_updates_while_running_about_once_a_second(backend: LocalBackend) -> None:
    events = await events_of(backend, shell("echo a; sleep 2.5; echo b"))
    first_b = next(
        i for i, e in enumerate(events) if isinstance(e, OutputAppended) and e.offset == 2
    )
    early = [e for e in events[:first_b] if isinstance(e, TailUpdated)]
    assert early == [TailUpdated(MACHINE.id, Stream.STDOUT, b"a\n")]


async def test_tail_updates_are_throttled(backend: LocalBackend) -> None:
    began = time.monotonic()
    events = await events_of(backend, shell("for i in $(seq 40); do echo $i; sleep 0.05; done"))
    elapsed = time.monotonic() - began
    tails = [e for e in events if isinstance(e, TailUpdated)]
    assert len(tails) - 2 <= elapsed + 1  # the 2 are the final ones, one per stream
    assert len(tails) >= 3


async def test_large_output_streams_in_constant_memory(backend: LocalBackend) -> None:
    size, largest, total = 50_000_000, 0, 0
    tracemalloc.start()
    try:
        async for event in backend.run(MACHINE, shell(f"head -c {size} /dev/zero"), run_id="big"):
            if isinstance(event, OutputAppended):
                largest, total = max(largest, len(event.data)), total + len(event.data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == size
    assert largest <= 64 * 1024
    assert peak < 4_000_000


async def test_unknown_run_as_user(backend: LocalBackend) -> None:
    events = await events_of(backend, shell("true", run_as_user="no-such-user-xyz"))
    finished = finished_of(events)
    assert (finished.state, finished.exit_code) == (RunState.FAILED, -102)
    assert "user 'no-such-user-xyz' not found" in finished.error


async def test_run_as_needs_root(backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    finished = finished_of(await events_of(backend, shell("true", run_as_user="nobody")))
    assert finished.state is RunState.FAILED
    assert "run-as needs fleetrun to run as root" in finished.error


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
async def test_run_as_user() -> None:
    backend = LocalBackend()  # the user must be able to reach the dir: pytest's tmp is 0700
    script = 'id -un; printf "%s|%s|%s\\n" "$HOME" "$GREETING" "$1"; pwd >/dev/null && echo ok'
    command = shell(
        script, Parameter("GREETING", "hi"), Parameter("", "arg"), run_as_user="nobody",
        run_as_password="not-used",
    )  # fmt: skip
    events = await events_of(backend, command)
    assert finished_of(events).state is RunState.SUCCEEDED, events
    home = Path("/nonexistent")
    assert stdout_of(events) == f"nobody\n{home}|hi|arg\nok\n".encode()


PLANTED = {
    "FLEETRUN_SECRET_TOKEN": "planted-secret",
    "FLEETRUN_SECRET_RUN_AS_PASSWORD": "planted-password",
    "AZURE_CLIENT_SECRET": "planted-azure",
    "PATH": "/planted/bin:/usr/bin:/bin",
    "LANG": "de_DE.UTF-8",
    "TERM": "xterm-256color",
}
ENVIRONMENT_SCRIPT = 'tr "\\0" "\\n" < /proc/$$/environ | sort'


def environment_of(events: list[MachineEvent]) -> dict[str, str]:
    assert finished_of(events).state is RunState.SUCCEEDED, events
    return dict(line.split("=", 1) for line in stdout_of(events).decode().splitlines())


@pytest.mark.parametrize("user", ["", "nobody"])
async def test_the_script_gets_a_minimal_environment_and_no_secret(
    monkeypatch: pytest.MonkeyPatch, user: str
) -> None:
    if user and os.geteuid() != 0:
        pytest.skip("switching user needs root")
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    backend = LocalBackend()  # a run-as user must reach the dir: pytest's tmp is 0700
    command = shell(ENVIRONMENT_SCRIPT, Parameter("B_PUBLIC", "1"), Parameter("", "positional"),
                    Parameter("A_PROTECTED", "2", protected=True), run_as_user=user,
                    run_as_password="planted-password" if user else "")
    env = environment_of(await events_of(backend, command))
    account = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    cookie = env.pop("FLEETRUN_RUN")
    assert re.fullmatch(r"[0-9a-f-]{16,80}", cookie), cookie
    assert env == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": account.pw_dir,
        "USER": account.pw_name,
        "LOGNAME": account.pw_name,
        "SHELL": account.pw_shell,
        "LANG": "de_DE.UTF-8",
        "B_PUBLIC": "1",
        "A_PROTECTED": "2",
    }


@pytest.mark.parametrize("caller", ["", "() { :; }; echo pwned", "../../etc/passwd", "C.UTF-8"])
async def test_a_locale_that_is_not_a_plain_name_becomes_c_utf8(
    backend: LocalBackend, monkeypatch: pytest.MonkeyPatch, caller: str
) -> None:
    monkeypatch.setenv("LANG", caller)
    env = environment_of(await events_of(backend, shell(ENVIRONMENT_SCRIPT)))
    assert env["LANG"] == "C.UTF-8"


async def test_bad_environment_name_fails_the_run(backend: LocalBackend, tmp_path: Path) -> None:
    finished = finished_of(await events_of(backend, shell("true", Parameter("A=B", "x"))))
    assert finished.state is RunState.FAILED
    assert "could not start" in finished.error
    assert list(tmp_path.iterdir()) == []


async def test_missing_work_dir_fails_the_run(tmp_path: Path) -> None:
    backend = LocalBackend(work_dir=tmp_path / "missing")
    finished = finished_of(await events_of(backend, shell("true")))
    assert finished.state is RunState.FAILED


async def test_health_without_bash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "BASH", "/nonexistent/bash")
    health = await LocalBackend().check_health([MACHINE])
    assert health[MACHINE.id].status is HealthStatus.NOT_READY
    assert "/nonexistent/bash" in health[MACHINE.id].detail


async def test_health_reports_the_bash_version() -> None:
    health = (await LocalBackend().check_health([MACHINE]))[MACHINE.id]
    assert re.fullmatch(r"bash \d+\.\d+.*", health.detail)


async def test_output_buffered_at_exit_is_complete_on_both_streams(backend: LocalBackend) -> None:
    # stdout hits EOF first while stderr still has a pipe-full queued: none of it may be lost
    script = "exec 1>&-; head -c 60000 /dev/zero | tr '\\0' e >&2"
    for _ in range(10):
        events = await events_of(backend, shell(script))
        stderr = b"".join(
            e.data for e in events if isinstance(e, OutputAppended) and e.stream == "stderr"
        )
        assert stderr == b"e" * 60000


async def test_cancel_reports_minus_one_and_canceled(backend: LocalBackend) -> None:
    events: list[MachineEvent] = []
    async with asyncio.timeout(10):
        async for event in backend.run(MACHINE, shell("echo go; sleep 30"), run_id="c1"):
            events.append(event)
            if isinstance(event, OutputAppended):
                await backend.cancel(MACHINE, "other-run")  # someone else's run: no effect
                await backend.cancel(MACHINE, "c1")
    finished = finished_of(events)
    assert (finished.state, finished.exit_code, finished.error) == (
        RunState.CANCELED,
        -1,
        "canceled",
    )
