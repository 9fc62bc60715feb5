"""How a simulated machine produces a script's output: a real process, or a simulation.

Both keep stdout and stderr as growing byte streams the agent reads from an offset (to
append to blobs) and from the end (the 4096-byte instance-view tail), and both can be
killed. A process runs the script the way the managed run-command handlers do; a
simulation prints what the fleet file scripted, so a 10,000-machine fleet costs no
processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import random
import shutil
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core import scratch
from core.guardian import guardian
from core.proctree import Tracked, kill_runs, new_cookie
from core.sandbox.fleet import Simulation
from core.sandbox.host_name import in_namespace, uts_namespaces, write_shims
from core.script_env import SAFE_PATH, script_environment

TAIL_BYTES = 4096
STREAMS = ("stdout", "stderr")
SIGNALED_EXIT = -1
"""What Go's ``WaitStatus.ExitStatus()`` gives the Linux handler for a killed script."""


class ExecutionFailure(Exception):
    """The script could not be started; ``exit_code`` is the handler's negative code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Executor(Protocol):
    async def start(self) -> None: ...

    def size(self, stream: str) -> int: ...

    def read(self, stream: str, offset: int) -> bytes: ...

    def tail(self, stream: str) -> bytes: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Script:
    """One run's script and inputs, as the handler receives them."""

    text: str
    windows: bool
    parameters: Sequence[tuple[str, str]]
    """Public then protected ``(name, value)`` pairs; an empty name is a positional value."""
    machine_name: str
    run_command_name: str
    seq: int
    run_as_user: str = ""


class ProcessExecutor:
    """Runs the script as a local process with the managed handler's conventions.

    Linux: ``script.sh`` written verbatim (mode 0500) in a fresh 0700 directory, started as
    ``/bin/bash -c '"$0" v1 v2' <path>`` with unnamed values appended unquoted (as the
    handler does, shell injection included), named values as environment variables, cwd that
    directory, stdout and stderr straight into files there. Windows: ``script.ps1`` run by
    ``pwsh -File`` with ``-name value`` arguments. Each run is its own process group so a
    kill reaches the script's children too (the handler's kill may not; we aim for the
    documented effect), and carries a run cookie so that it reaches those that left the
    group as well (:mod:`core.proctree`). The environment is :mod:`core.script_env`'s plus
    the handler's own variables: nothing of the sandbox's. The guardian kills a script still
    running when the sandbox's process dies.
    """

    def __init__(self, script: Script, workdir: Path, home: Path) -> None:
        self._script = script
        self._dir = workdir
        self._home = home
        self._process: asyncio.subprocess.Process | None = None
        self._killed = False
        self._tracked = Tracked(new_cookie(), os.geteuid())
        self._reaping: asyncio.Future[None] | None = None

    def _path(self, stream: str) -> Path:
        return self._dir / stream

    async def start(self) -> None:
        script = self._script
        try:
            if self._dir.is_relative_to(scratch.folder_path()):
                scratch.folder()  # the sandbox's own root: made private and guarded first
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._home.mkdir(parents=True, exist_ok=True)
        except (OSError, scratch.ScratchError) as exc:
            raise ExecutionFailure(-203, f"failed to create the script directory: {exc}") from None
        name = "script.ps1" if script.windows else "script.sh"
        script_path = self._dir / name
        try:
            script_path.write_bytes(script.text.encode("utf-8"))
            script_path.chmod(0o500)
        except OSError as exc:
            raise ExecutionFailure(-203, f"failed to save the script: {exc}") from None
        user = _run_as(script.run_as_user) if script.run_as_user else None
        if user is not None:
            # The user must be able to enter the directory and run the script, as the handler
            # chowns its runas copy; done before the start, or the script races the chown.
            try:
                os.chown(self._dir, user.pw_uid, -1)
                os.chown(script_path, user.pw_uid, -1)
            except OSError as exc:
                raise ExecutionFailure(
                    -213, f"failed to give the script to {script.run_as_user!r}: {exc}"
                ) from None
        env = self._environment(user)
        argv = self._argv(script_path)
        if not script.windows:
            argv = await self._own_host_name(argv, env, user)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        out = os.open(self._path("stdout"), flags, 0o600)
        err = os.open(self._path("stderr"), flags, 0o600)
        if user is not None:
            self._tracked = Tracked(self._tracked.cookie, user.pw_uid)
        # Watched from before the start: a sandbox killed meanwhile leaves nothing running.
        guardian().watch(self._tracked)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self._dir,
                env=env,
                start_new_session=True,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
            )
        except OSError as exc:
            guardian().forget(self._tracked.cookie)
            raise ExecutionFailure(-1, f"failed to start the script: {exc}") from None
        finally:
            os.close(out)
            os.close(err)
        self._tracked = Tracked(self._tracked.cookie, self._tracked.uid, self._process.pid)
        guardian().watch(self._tracked)

    async def _own_host_name(
        self, argv: list[str], env: dict[str, str], user: pwd.struct_passwd | None
    ) -> list[str]:
        """``argv`` (and ``env``) made to name the machine, not the host (:mod:`host_name`)."""
        name = self._script.machine_name
        if user is None and await uts_namespaces():
            return in_namespace(name, argv)
        shims = self._home.parent / "bin"
        try:
            if write_shims(shims, name):
                env["PATH"] = f"{shims}{os.pathsep}{env['PATH']}"
        except OSError:
            pass  # the script still runs; it names the host, as it did before the shims
        return argv

    def _argv(self, script_path: Path) -> list[str]:
        if self._script.windows:
            pwsh = shutil.which("pwsh")
            if pwsh is None:
                raise ExecutionFailure(
                    -1,
                    "PowerShell 7 (pwsh) is not installed on the sandbox host, and the fleet "
                    "file gives this Windows machine executor = \"process\"; install pwsh, "
                    "or remove that line to have the machine simulated where pwsh is missing",
                )
            args: list[str] = []
            for name, value in self._script.parameters:
                if value == "":
                    continue
                args.extend([f"-{name}", value] if name else [value])
            return [pwsh, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
                    "-File", str(script_path), *args]
        unnamed = [v for n, v in self._script.parameters if not n and v]
        # The handler's command line, with the script's path handed over as $0: the path
        # holds the machine's and the run command's names, and no name may reach a shell.
        command = '"$0"' + "".join(" " + value for value in unnamed)
        return ["/bin/bash", "-c", command, str(script_path)]

    def _environment(self, user: pwd.struct_passwd | None) -> dict[str, str]:
        script = self._script
        handler = {
            "HOSTNAME": script.machine_name,
            "COMPUTERNAME": script.machine_name,
            "ConfigExtensionName": script.run_command_name,
            "ConfigSequenceNumber": str(script.seq),
        }
        if script.windows:
            # pwsh is wherever this machine has it; values travel as arguments there.
            handler["PATH"] = os.environ.get("PATH", SAFE_PATH)
        # The Linux handler sets named values with os.Setenv; empty ones are skipped.
        named = [] if script.windows else script.parameters
        return script_environment(user, named, self._tracked.cookie,
                                  home=None if user else str(self._home), extra=handler)

    def size(self, stream: str) -> int:
        try:
            return self._path(stream).stat().st_size
        except OSError:
            return 0

    def read(self, stream: str, offset: int) -> bytes:
        try:
            with open(self._path(stream), "rb") as handle:
                handle.seek(offset)
                return handle.read()
        except OSError:
            return b""

    def tail(self, stream: str) -> bytes:
        size = self.size(stream)
        # The script may write between the stat and the read: never more than 4096 bytes.
        return self.read(stream, max(0, size - TAIL_BYTES))[:TAIL_BYTES]

    async def wait(self) -> int:
        if self._process is None:
            raise RuntimeError("wait() before start()")
        code = await self._process.wait()
        if self._reaping is not None:
            await asyncio.shield(self._reaping)  # what left the group is gone too
        else:
            guardian().forget(self._tracked.cookie)
        return SIGNALED_EXIT if code < 0 or self._killed else code

    def kill(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        self._killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if self._reaping is None:
            # The /proc scan for what left the group runs in a thread, off the event loop.
            tracked = self._tracked
            self._reaping = asyncio.get_running_loop().run_in_executor(None, kill_runs, [tracked])
            self._reaping.add_done_callback(lambda _: guardian().forget(tracked.cookie))


def _run_as(user_name: str) -> pwd.struct_passwd:
    try:
        user = pwd.getpwnam(user_name)
    except KeyError:
        raise ExecutionFailure(
            -102,
            f"failed to get the user {user_name!r} on the machine: user not found; "
            "see https://aka.ms/RunCommandManagedLinux",
        ) from None
    if os.geteuid() != 0 and user.pw_uid != os.geteuid():
        raise ExecutionFailure(
            -208,
            f"cannot run as {user_name!r}: the sandbox itself does not run as root",
        )
    return user


class SimulatedExecutor:
    """Prints scripted output over a scripted duration; no process at all."""

    def __init__(self, simulation: Simulation, machine_name: str, rng: random.Random) -> None:
        self._sim = simulation
        self._machine = machine_name
        low, high = simulation.duration
        self._duration = rng.uniform(low, high)
        failed = simulation.fail_ratio > 0 and rng.random() < simulation.fail_ratio
        self._exit_code = simulation.fail_exit_code if failed else simulation.exit_code
        self._buffers: dict[str, bytearray] = {stream: bytearray() for stream in STREAMS}
        self._task: asyncio.Task[int] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._play())

    async def _play(self) -> int:
        sim = self._sim
        step = self._duration / max(sim.lines, 1)
        for number in range(1, sim.lines + 1):
            self._buffers["stdout"] += self._fill(sim.output, number)
            await asyncio.sleep(step)
        if sim.lines == 0:
            await asyncio.sleep(self._duration)
        if sim.error:
            self._buffers["stderr"] += self._fill(sim.error, sim.lines)
        return self._exit_code

    def _fill(self, template: str, line: int) -> bytes:
        text = template.replace("{machine}", self._machine).replace("{line}", str(line))
        return text.encode("utf-8")

    def size(self, stream: str) -> int:
        return len(self._buffers[stream])

    def read(self, stream: str, offset: int) -> bytes:
        return bytes(self._buffers[stream][offset:])

    def tail(self, stream: str) -> bytes:
        return bytes(self._buffers[stream][-TAIL_BYTES:])

    async def wait(self) -> int:
        if self._task is None:
            raise RuntimeError("wait() before start()")
        try:
            return await asyncio.shield(self._task)
        except asyncio.CancelledError:
            if self._task.cancelled():
                return SIGNALED_EXIT
            raise

    def kill(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
