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

from core.sandbox.fleet import Simulation

TAIL_BYTES = 4096
STREAMS = ("stdout", "stderr")
SIGNALED_EXIT = -1
"""What Go's ``WaitStatus.ExitStatus()`` gives the Linux handler for a killed script."""

_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


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
    ``/bin/bash -c "<path> v1 v2"`` with unnamed values appended unquoted (as the handler
    does, shell injection included), named values as environment variables, cwd that
    directory, stdout and stderr straight into files there. Windows: ``script.ps1`` run by
    ``pwsh -File`` with ``-name value`` arguments. Each run is its own process group so a
    kill reaches the script's children too (the handler's kill may not; we aim for the
    documented effect).
    """

    def __init__(self, script: Script, workdir: Path, home: Path) -> None:
        self._script = script
        self._dir = workdir
        self._home = home
        self._process: asyncio.subprocess.Process | None = None
        self._killed = False

    def _path(self, stream: str) -> Path:
        return self._dir / stream

    async def start(self) -> None:
        script = self._script
        try:
            self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
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
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        out = os.open(self._path("stdout"), flags, 0o600)
        err = os.open(self._path("stderr"), flags, 0o600)
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
            raise ExecutionFailure(-1, f"failed to start the script: {exc}") from None
        finally:
            os.close(out)
            os.close(err)

    def _argv(self, script_path: Path) -> list[str]:
        if self._script.windows:
            pwsh = shutil.which("pwsh")
            if pwsh is None:
                raise ExecutionFailure(
                    -1,
                    "PowerShell 7 (pwsh) is not installed on the sandbox host, so this "
                    "simulated Windows machine cannot run scripts; install pwsh or give the "
                    "machine executor = \"simulated\" in the fleet file",
                )
            args: list[str] = []
            for name, value in self._script.parameters:
                if value == "":
                    continue
                args.extend([f"-{name}", value] if name else [value])
            return [pwsh, "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass",
                    "-File", str(script_path), *args]
        unnamed = [v for n, v in self._script.parameters if not n and v]
        command = str(script_path) + "".join(" " + value for value in unnamed)
        return ["/bin/bash", "-c", command]

    def _environment(self, user: pwd.struct_passwd | None) -> dict[str, str]:
        script = self._script
        env = {
            "PATH": _BASE_PATH,
            "LANG": "C.UTF-8",
            "HOME": user.pw_dir if user else str(self._home),
            "HOSTNAME": script.machine_name,
            "COMPUTERNAME": script.machine_name,
            "ConfigExtensionName": script.run_command_name,
            "ConfigSequenceNumber": str(script.seq),
        }
        if script.windows:
            env["PATH"] = os.environ.get("PATH", _BASE_PATH)
        if not script.windows:
            # The Linux handler sets named values with os.Setenv; empty ones are skipped.
            for name, value in script.parameters:
                if name and value:
                    env[name] = value
        return env

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
        return SIGNALED_EXIT if code < 0 or self._killed else code

    def kill(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        self._killed = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


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
