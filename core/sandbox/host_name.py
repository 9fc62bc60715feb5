"""Each simulated Linux machine answers ``hostname`` and ``uname -n`` with its own name.

Scripts run on the sandbox's host, so without help every machine of the demo fleet would
name the host, and grouping or diffing by output would see one machine many times. Two
ways, the first where the kernel allows it:

- a UTS namespace per run (``unshare --uts``, which needs CAP_SYS_ADMIN: root, outside a
  locked-down container): the machine's name is the kernel's answer to everything that asks
  (``hostname``, ``uname -n``, ``/proc/sys/kernel/hostname``, ``gethostname()``);
- otherwise, and for runs as another user (the process drops privileges before ``unshare``
  could run), ``hostname`` and ``uname`` wrappers in a directory first on the script's
  ``PATH``. They cover the commands, not programs that ask the kernel themselves.

The handler's own ``HOSTNAME`` variable already holds the machine's name in both cases.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from core.script_env import SAFE_PATH

_SET_NAME = 'printf %s "$0" > /proc/sys/kernel/hostname && unset PWD OLDPWD && exec "$@"'
"""Run by ``sh`` in the new namespace: the name arrives as ``$0``, never in the text. The
script's environment stays the handler's: ``sh`` would have added ``PWD``."""
_SHIM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_namespaces: bool | None = None


async def uts_namespaces() -> bool:
    """Whether this host lets the sandbox give a run its own host name (asked once)."""
    global _namespaces
    if _namespaces is None:
        _namespaces = await _probe()
    return _namespaces


async def _probe() -> bool:
    unshare = shutil.which("unshare", path=SAFE_PATH)
    if unshare is None:
        return False
    try:
        probe = await asyncio.create_subprocess_exec(
            unshare, "--uts", "--", "/bin/sh", "-c", _SET_NAME, "probe", "true",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env={"PATH": SAFE_PATH},
        )
    except OSError:
        return False
    return await probe.wait() == 0


def in_namespace(machine_name: str, argv: list[str]) -> list[str]:
    """``argv`` run in a UTS namespace of its own whose host name is ``machine_name``.

    ``unshare`` without ``--fork`` execs in place: the script keeps the process (and group)
    that the sandbox started and tracks.
    """
    unshare = shutil.which("unshare", path=SAFE_PATH) or "unshare"
    return [unshare, "--uts", "--", "/bin/sh", "-c", _SET_NAME, machine_name, *argv]


def write_shims(directory: Path, machine_name: str) -> bool:
    """Put ``hostname`` and ``uname`` wrappers naming ``machine_name`` in ``directory``.

    Returns whether they are there (a name unfit for a host name gets none).
    """
    if not _SHIM_NAME.match(machine_name):
        return False
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    real_hostname = shutil.which("hostname", path=SAFE_PATH) or ""
    real_uname = shutil.which("uname", path=SAFE_PATH) or "/bin/uname"
    # The name is checked above (letters, digits, '_', '.', '-'): safe inside single quotes.
    scripts = {
        "hostname": _HOSTNAME.format(name=machine_name, real=real_hostname),
        "uname": _UNAME.format(name=machine_name, real=real_uname),
    }
    for name, text in scripts.items():
        target = directory / name
        if target.exists() and target.read_text() == text:
            continue
        # Written aside and renamed: a run starting meanwhile never sees half a file.
        partial = directory / f".{name}.{os.getpid()}"
        partial.write_text(text)
        partial.chmod(0o755)
        os.replace(partial, target)
    return True


_HOSTNAME = """#!/bin/sh
# fleetrun sandbox: this simulated machine's name, not the host's.
name='{name}'
case "$1" in
  "" | -f | --fqdn | --long | -A | --all-fqdns) printf '%s\\n' "$name" ;;
  -s | --short) printf '%s\\n' "${{name%%.*}}" ;;
  -*) if [ -n '{real}' ]; then exec '{real}' "$@"; fi
      echo "hostname: $1: not supported on this simulated machine" >&2; exit 1 ;;
  *) echo "hostname: the simulated machine $name cannot change its host's name" >&2
     exit 1 ;;
esac
"""

_UNAME = """#!/bin/sh
# fleetrun sandbox: the host's uname, with this simulated machine's name as the node name.
host=$('{real}' -n) || exit $?
out=$('{real}' "$@") || exit $?
printf '%s\\n' "$out" | awk -v host="$host" -v name='{name}' \\
  '{{ for (i = 1; i <= NF; i++) if ($i == host) {{ $i = name; break }} print }}'
"""
