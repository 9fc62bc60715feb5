"""This machine as a target: runs a script with the Linux managed run-command handler's semantics.

What is reproduced from RunCommandHandlerLinux (v2): the script is written verbatim (no CRLF
fix) as ``script.sh`` (mode 0500) in a private 0700 working dir that is also the cwd; bash
executes the file, so a shebang is honoured and bash is the default interpreter; named
parameters (public, then protected) become environment variables, unnamed ones positional
arguments, and empty values are skipped; exit N is Failed with code N, a signal kill -1; the
reported tail of each stream is its last 4096 bytes, cut as bytes.

Deliberate departures:

* Unnamed values are passed as exact argv entries. The handler pastes them unquoted into a
  ``bash -c`` string, which word-splits, globs and runs ``$()``: a shell-injection surface.
* The script's whole process group is SIGKILLed on timeout, on cancel and also once the script
  exits, so no background child outlives its run (the handler kills only the direct child on
  timeout). On timeout and cancel, processes that left the group (``setsid``, a double fork)
  are found by the run cookie in their environment and killed too (:mod:`core.proctree`);
  after a normal end they are left running, and their hold on the output pipes is dropped
  shortly after the script exits. Should fleetrun die, the guardian (:mod:`core.guardian`)
  kills the runs still going and removes their working dirs.
* The environment is the script's alone (:mod:`core.script_env`): a fixed PATH, the
  account's HOME, USER, LOGNAME and SHELL, LANG, the named parameters and the run cookie;
  nothing of fleetrun's own (its secrets included), where the handler passes on its own.
* A timeout is reported as TimedOut and a cancel as Canceled (the handler says Failed, -1).
* Output streams through pipes rather than files, and nothing is kept after the run.
* run-as switches user directly (fleetrun must be root), never via sudo with the password;
  named parameters still reach the script. Unnamed values are on argv, visible in the process
  list, so protected values should be named.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from core import scratch
from core.errors import FleetrunError
from core.events import Finished, MachineEvent, OutputAppended, StateChanged, TailUpdated
from core.guardian import guardian
from core.model import (
    TAIL_BYTES,
    Command,
    CommandId,
    Health,
    HealthStatus,
    Machine,
    MachineId,
    OsType,
    RunState,
    Stream,
    utc_now,
)
from core.proctree import Tracked, kill_runs, new_cookie
from core.script_env import script_environment

BASH = "/bin/bash"
CHUNK = 64 * 1024
TAIL_INTERVAL = 1.0
DRAIN_GRACE = 0.5
"""After the script exits: stop reading once the pipes stay silent this long."""
DRAIN_CAP = 10.0
"""After the script exits: stop reading after this long even if an escaped process chatters."""
USER_NOT_FOUND = -102
# "$0" is the script path: bash execs the file, so the kernel honours a shebang and bash
# itself runs a shebang-less script, as with the handler's `bash -c "<path> <args>"`.
_LAUNCH = '"$0" "$@"'


class _Failure(FleetrunError):
    """The script could not be started; the message is the run's error."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class _Spawned:
    """A started script: its process, the read side of its pipes, its working dir."""

    proc: asyncio.subprocess.Process
    readers: dict[Stream, asyncio.StreamReader]
    transports: list[asyncio.BaseTransport]
    workdir: str
    tracked: Tracked
    reads: dict[Stream, asyncio.Task[bytes]] = field(default_factory=dict)
    canceled: bool = False

    def read(self, stream: Stream) -> None:
        self.reads[stream] = asyncio.ensure_future(self.readers[stream].read(CHUNK))

    async def kill_tree(self) -> None:
        """Kill the script's group and every process that left it (a /proc scan: a thread)."""
        await asyncio.to_thread(kill_runs, [self.tracked])

    async def close(self, *, whole_tree: bool) -> None:
        """Kill what is left, release the pipes, reap the script, delete its dir.

        ``whole_tree``: the run is being abandoned before the script ended, so what left its
        group goes too (a timeout or a cancel has killed that already).
        """
        if whole_tree:
            await self.kill_tree()
        else:
            _kill_group(self.proc.pid)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()  # in case it left its group: wait() below must return
        for task in self.reads.values():
            task.cancel()
        await asyncio.gather(*self.reads.values(), return_exceptions=True)
        for transport in self.transports:
            transport.close()
        await self.proc.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
        guardian().forget(self.tracked.cookie)


class LocalBackend:
    """Runs commands on this machine (see the module docstring for the semantics)."""

    def __init__(self, work_dir: str | os.PathLike[str] | None = None) -> None:
        """Create a backend.

        Args:
            work_dir: where each run's private working dir is made (the system temp dir by
                default). For run-as, the target user must be able to traverse it.
        """
        self._work_dir = None if work_dir is None else os.fspath(work_dir)
        self._live: dict[tuple[MachineId, str], _Spawned] = {}

    async def check_health(self, machines: Sequence[Machine]) -> dict[MachineId, Health]:
        """Every machine gets this machine's health: whether bash runs."""
        health = await _bash_health()
        return {m.id: health for m in machines}

    async def cancel(self, machine: Machine, run_id: str) -> None:
        """Kill the run's process group; its ``run`` then finishes as Canceled. A no-op for
        a run that is not (or no longer) running."""
        spawned = self._live.get((machine.id, run_id))
        if spawned is not None:
            spawned.canceled = True
            await spawned.kill_tree()

    async def run(
        self, machine: Machine, command: Command, *, run_id: str
    ) -> AsyncIterator[MachineEvent]:
        """Run ``command`` here and yield its events, as the Backend protocol describes.

        A script that cannot start (wrong command type, bad run-as user, no working dir)
        still yields Running, then a Failed Finished saying why.
        """
        mid = machine.id
        started = utc_now()
        yield StateChanged(mid, RunState.RUNNING, "Execution in progress")
        try:
            spawned = await self._spawn(machine, command)
        except _Failure as exc:
            yield Finished(mid, RunState.FAILED, exc.exit_code, started, utc_now(), str(exc))
            return
        key = (mid, run_id)
        self._live[key] = spawned
        tails = dict.fromkeys(Stream, b"")
        shown = dict(tails)
        offsets = dict.fromkeys(Stream, 0)
        timed_out = False
        exited_at: float | None = None
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + command.timeout if command.timeout > 0 else None
            next_tick = loop.time() + TAIL_INTERVAL
            waiter = asyncio.ensure_future(spawned.proc.wait())
            for stream in Stream:
                spawned.read(stream)
            while exited_at is None or spawned.reads:
                draining = exited_at is not None
                if exited_at is None:
                    wake = next_tick if deadline is None else min(next_tick, deadline)
                    limit, pending = wake - loop.time(), {*spawned.reads.values(), waiter}
                elif loop.time() - exited_at > DRAIN_CAP:
                    break
                else:
                    limit, pending = DRAIN_GRACE, set(spawned.reads.values())
                done: set[asyncio.Future[Any]]
                done, _ = await asyncio.wait(
                    pending, timeout=max(limit, 0.0), return_when=asyncio.FIRST_COMPLETED
                )
                if exited_at is None and waiter in done:
                    exited_at = loop.time()
                    _kill_group(spawned.proc.pid)  # the engine promises nothing keeps running
                if draining and not done:
                    break  # silent pipes: only a process that left the group holds them
                for stream, task in list(spawned.reads.items()):
                    if task not in done:
                        continue
                    data = task.result()
                    if not data:
                        del spawned.reads[stream]
                        continue
                    spawned.read(stream)
                    tails[stream] = (tails[stream] + data)[-TAIL_BYTES:]
                    yield OutputAppended(mid, stream, offsets[stream], data)
                    offsets[stream] += len(data)
                now = loop.time()
                if exited_at is None and deadline is not None and now >= deadline:
                    timed_out, deadline = True, None
                    await spawned.kill_tree()
                if exited_at is None and now >= next_tick:
                    next_tick = now + TAIL_INTERVAL
                    for stream in Stream:
                        if tails[stream] != shown[stream]:
                            shown[stream] = tails[stream]
                            yield TailUpdated(mid, stream, tails[stream])
        finally:
            self._live.pop(key, None)
            await spawned.close(whole_tree=exited_at is None)
        returncode = spawned.proc.returncode
        assert returncode is not None  # close() reaped it
        state, exit_code, error = _outcome(returncode, timed_out, spawned.canceled, command.timeout)
        for stream in Stream:
            yield TailUpdated(mid, stream, tails[stream])
        yield Finished(mid, state, exit_code, started, utc_now(), error)

    async def _spawn(self, machine: Machine, command: Command) -> _Spawned:
        if command.command_id is not CommandId.SHELL or machine.os is not OsType.LINUX:
            raise _Failure(
                f"Execution failed: the local backend runs only {CommandId.SHELL} on Linux, "
                f"not {command.command_id} on {machine.os}"
            )
        account = _account(command.run_as_user)
        try:
            parent = self._work_dir or str(scratch.folder())
            workdir = tempfile.mkdtemp(prefix="fleetrun-", dir=parent)
        except (OSError, scratch.ScratchError) as exc:
            raise _Failure(f"Execution failed: no working dir: {exc}") from exc
        # Watched from before the start: a fleetrun killed meanwhile leaves nothing running.
        tracked = Tracked(new_cookie(), os.geteuid() if account is None else account.pw_uid)
        guardian().watch(tracked)
        loop = asyncio.get_running_loop()
        readers: dict[Stream, asyncio.StreamReader] = {}
        writers: dict[Stream, int] = {}
        transports: list[asyncio.BaseTransport] = []
        try:
            argv, env, extra = _prepare(workdir, command, account, tracked.cookie)
            for stream in Stream:
                read_fd, writers[stream] = os.pipe()
                pipe = os.fdopen(read_fd, "rb", buffering=0)
                readers[stream] = asyncio.StreamReader(limit=CHUNK, loop=loop)
                protocol = functools.partial(asyncio.StreamReaderProtocol, readers[stream])
                transports.append((await loop.connect_read_pipe(protocol, pipe))[0])
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=writers[Stream.STDOUT],
                stderr=writers[Stream.STDERR],
                cwd=workdir,
                env=env,
                start_new_session=True,  # one process group to kill: script and all children
                **extra,
            )
        except BaseException as exc:
            for opened in transports:
                opened.close()
            shutil.rmtree(workdir, ignore_errors=True)
            guardian().forget(tracked.cookie)
            if isinstance(exc, OSError | ValueError):
                raise _Failure(f"Execution failed: could not start the script: {exc}") from exc
            raise
        finally:
            for write_fd in writers.values():
                os.close(write_fd)  # the child has its own copies; ours would hide EOF
        tracked = Tracked(tracked.cookie, tracked.uid, proc.pid)  # its own group's leader
        guardian().watch(tracked)
        return _Spawned(proc, readers, transports, workdir, tracked)


def _prepare(
    workdir: str, command: Command, account: pwd.struct_passwd | None, cookie: str
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """Write the script; return its argv, environment and user-switching arguments."""
    script = os.path.join(workdir, "script.sh")
    fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o500)
    with open(fd, "wb") as file:
        file.write(command.script.encode("utf-8", "surrogateescape"))
    argv = [BASH, "-c", _LAUNCH, script]
    named = []
    for param in command.ordered_parameters():
        if param.value and param.named:
            named.append((param.name, param.value))
        elif param.value:
            argv.append(param.value)
    env = script_environment(account, named, cookie, lang=os.environ.get("LANG"))
    if account is None:
        return argv, env, {}
    for path in (workdir, script):
        os.chown(path, account.pw_uid, account.pw_gid)
    groups = os.getgrouplist(account.pw_name, account.pw_gid)
    return argv, env, {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": groups}


def _account(user: str) -> pwd.struct_passwd | None:
    if not user:
        return None
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise _Failure(f"Execution failed: user '{user}' not found", USER_NOT_FOUND) from None
    if os.geteuid() != 0:
        raise _Failure("Execution failed: run-as needs fleetrun to run as root on this machine")
    return account


def _outcome(
    returncode: int, timed_out: bool, canceled: bool, timeout: int
) -> tuple[RunState, int, str]:
    # A kill only counts as ours if the script died of a signal: an exit that raced the kill
    # is the script's real result.
    if returncode < 0 and timed_out:
        return RunState.TIMED_OUT, -1, f"Execution timed out after {timeout} s; killed"
    if returncode < 0 and canceled:
        return RunState.CANCELED, -1, "canceled"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return RunState.FAILED, -1, f"Execution failed: command killed by {name} (exit status=-1)"
    if returncode == 0:
        return RunState.SUCCEEDED, 0, ""
    error = f"Execution failed: command terminated with exit status={returncode}"
    return RunState.FAILED, returncode, error


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _bash_health() -> Health:
    """Ready when bash runs, with its version as the "agent" version."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *(BASH, "-c", 'printf %s "$BASH_VERSION"'),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(10):
                out, _ = await proc.communicate()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    except (OSError, TimeoutError) as exc:
        problem = f"{BASH} does not run: {exc or 'no answer within 10 s'}"
        return Health(HealthStatus.NOT_READY, problem, checked_at=utc_now())
    if proc.returncode != 0:
        problem = f"{BASH} exited with status {proc.returncode}"
        return Health(HealthStatus.NOT_READY, problem, checked_at=utc_now())
    version = out.decode(errors="replace")
    return Health(HealthStatus.READY, f"bash {version}", version, checked_at=utc_now())
