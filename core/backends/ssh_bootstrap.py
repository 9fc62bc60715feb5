"""What runs on an SSH host: a fixed bootstrap on the command line, everything else on stdin.

The remote command line holds only constant code and a run token (``exec bash ... -c
'<BOOTSTRAP>' fleetrun <token> <timeout>``): no script text and no parameter value ever
appears in the host's process list. The bootstrap reads from stdin a NUL-separated frame
ending with the script, its length given first:

    FLEETRUN2 \\0 <n> \\0 (NAME=value \\0){n} <m> \\0 (positional \\0){m}
        (inline|file) \\0 <length> \\0 <script bytes>

and then does what the Linux managed handler does: writes the script verbatim as
``script.sh`` in a private 0700 directory that is also the working directory, exports
the named parameters, and executes the file (a shebang is honoured; without one, bash runs
it, as it does for the handler's ``bash -c <path>``, without the ``chmod`` a shebang needs)
with the positional values as exact arguments. A script shorter than its length (the
channel closed early) never runs: a cut-off ``rm -rf /tmp/x`` must not become ``rm -rf /``.

The client never closes stdin while the run lasts. A reaper, detached from the output
streams, reads it: it kills the whole process group and removes the directory as soon as
the script ends, when the timeout passes, when a byte arrives (cancel), or when stdin ends
(the session closed: fleetrun died or the network dropped, and nobody is left to read the
output or cancel it): nothing the script started outlives it. Waiting on that read is also
the reaper's tick, so a run costs the host no sleep process.

The script also gets the run token as its run cookie, ``FLEETRUN_RUN=<token>``, which every
process it starts inherits. On a timeout, a cancel or the end of stdin (never after a
normal end: that costs nothing more than before), the reaper, and the kill command, also
look through ``/proc`` for the user's processes whose environment holds it and kill them:
those that left the group with ``setsid`` or a double fork. One that starts with a cleared
environment (``env -i``) carries no cookie and escapes.

The script is the session's main process (``exec``), so the SSH exit status is its exit
status, and a death by signal arrives as an SSH exit signal: exit codes need no guessing.
The reaper measures the timeout with bash's ``EPOCHREALTIME`` (bash 5); older bashes count
whole seconds and may stop a script up to a second late, never early.
"""

from __future__ import annotations

import re
import shlex

from core.errors import FleetrunError
from core.model import Command, Parameter

MAGIC = b"FLEETRUN2"
RESERVED_PREFIX = "__fleetrun_"
"""Parameter names starting with this would collide with the bootstrap's own variables."""
BOOTSTRAP_FAILURE = 203
"""Exit status of a bootstrap that could not set the run up (its message is on stderr)."""
INLINE_MAX = 64 * 1024
"""Scripts up to this size (without NUL bytes) are read by a bash builtin, not a process:
bash reads a pipe a byte at a time, which costs more than a ``head`` process beyond this."""
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Kills, as this user, every process started with the run cookie in its environment, again
# until a pass over /proc finds none (a dying process may have forked) or 5 s have passed.
# Bash alone, so it works on any Linux host; run only when a run is stopped, never after a
# normal end.
_SWEEP = r"""
__fleetrun_sweep() {
  local want="FLEETRUN_RUN=$1" end=$((SECONDS + 5)) hit p e
  while :; do
    hit=
    for p in /proc/[0-9]*; do
      [ -O "$p" ] || continue
      while IFS= read -r -d "" e; do
        [ "$e" = "$want" ] || continue
        kill -KILL "${p#/proc/}"
        hit=1
        break
      done < "$p/environ"
    done 2> /dev/null
    [ -n "$hit" ] && [ "$SECONDS" -lt "$end" ] || return 0
  done
}
""".strip()

# No single quote anywhere: it travels inside one. Every variable has the reserved prefix.
_BOOTSTRAP = _SWEEP + "\n" + r"""
__fleetrun_made=
__fleetrun_fail() {
  echo "fleetrun: $1" >&2
  [ -n "$__fleetrun_made" ] && LC_ALL=C rm -rf -- "$__fleetrun_dir"
  exit 203
}
umask 077
# Bytes, not characters, while the frame is read: restored before the script starts.
__fleetrun_lc_all=${LC_ALL-__fleetrun_unset}
LC_ALL=C
__fleetrun_dir="${TMPDIR:-/tmp}/fleetrun-$1"
__fleetrun_timeout="$2"
__fleetrun_bash="$BASH"
# LC_ALL=C: coreutils in the C locale skip loading locale data (a millisecond a process
# on every run of every host; their messages stay English).
LC_ALL=C mkdir -m 700 -- "$__fleetrun_dir" || __fleetrun_fail "cannot create $__fleetrun_dir"
__fleetrun_made=1
IFS= read -r -d "" __fleetrun_magic || __fleetrun_fail "bad frame"
[ "$__fleetrun_magic" = FLEETRUN2 ] || __fleetrun_fail "bad frame"
IFS= read -r -d "" __fleetrun_n || __fleetrun_fail "bad frame"
__fleetrun_env=()
for ((__fleetrun_i = 0; __fleetrun_i < __fleetrun_n; __fleetrun_i++)); do
  IFS= read -r -d "" __fleetrun_kv || __fleetrun_fail "bad frame"
  __fleetrun_env+=("$__fleetrun_kv")
done
IFS= read -r -d "" __fleetrun_n || __fleetrun_fail "bad frame"
__fleetrun_args=()
for ((__fleetrun_i = 0; __fleetrun_i < __fleetrun_n; __fleetrun_i++)); do
  IFS= read -r -d "" __fleetrun_a || __fleetrun_fail "bad frame"
  __fleetrun_args+=("$__fleetrun_a")
done
IFS= read -r -d "" __fleetrun_how || __fleetrun_fail "bad frame"
IFS= read -r -d "" __fleetrun_len || __fleetrun_fail "bad frame"
[[ "$__fleetrun_len" =~ ^[0-9]+$ ]] || __fleetrun_fail "bad frame"
__fleetrun_file="$__fleetrun_dir/script.sh"
if [ "$__fleetrun_how" = inline ]; then
  # A builtin, not a process: small scripts without NUL bytes (the client checks).
  __fleetrun_script=
  [ "$__fleetrun_len" -eq 0 ] || IFS= read -r -N "$__fleetrun_len" __fleetrun_script
  [ "${#__fleetrun_script}" -eq "$__fleetrun_len" ] ||
    __fleetrun_fail "the script arrived cut short"
  printf "%s" "$__fleetrun_script" > "$__fleetrun_file" || __fleetrun_fail "cannot save the script"
  __fleetrun_head=${__fleetrun_script:0:2}
  unset __fleetrun_script
else
  head -c "$__fleetrun_len" > "$__fleetrun_file" || __fleetrun_fail "cannot save the script"
  __fleetrun_size=$(wc -c < "$__fleetrun_file")
  [ "$__fleetrun_size" -eq "$__fleetrun_len" ] || __fleetrun_fail "the script arrived cut short"
  IFS= read -r -n 2 __fleetrun_head < "$__fleetrun_file"
fi
if [ "$__fleetrun_head" = "#!" ]; then chmod 500 "$__fleetrun_file"; fi
read -r _ _ _ _ __fleetrun_pg _ < /proc/$$/stat || __fleetrun_fail "no /proc"
echo "$__fleetrun_pg" > "$__fleetrun_dir/pgid"
(
  # stdin stays: the SSH channel, which the client holds open, writing nothing, until the
  # run ends. A byte on it (a cancel) or its end (the session closed, or fleetrun and its
  # connection gone: nobody left to read the output) stops the script. Reading it with a
  # timeout is also the tick, without a sleep process. (`<&0` below: without it, bash
  # gives a background job /dev/null.)
  exec > /dev/null 2>&1
  if [ -n "${EPOCHREALTIME:-}" ]; then
    __fleetrun_end=$(( ${EPOCHREALTIME//[!0-9]/} + __fleetrun_timeout * 1000000 ))
  else
    __fleetrun_end=$(( SECONDS + __fleetrun_timeout + 1 ))
  fi
  while kill -0 $$; do
    if [ "$__fleetrun_timeout" -gt 0 ]; then
      if [ -n "${EPOCHREALTIME:-}" ]; then __fleetrun_now=${EPOCHREALTIME//[!0-9]/}
      else __fleetrun_now=$SECONDS; fi
      [ "$__fleetrun_now" -ge "$__fleetrun_end" ] && break
    fi
    IFS= read -r -t 0.1 -n 1 _
    [ "$?" -gt 128 ] || break
  done
  LC_ALL=C rm -rf -- "$__fleetrun_dir"
  # Stopped while the script still runs (timeout, cancel, the session gone), not ended:
  # what left the group goes too. The client closing stdin after a normal end finds the
  # script already reaped (sshd reports the exit status only then): no /proc scan. Before
  # the group kill, which ends this reaper too; it carries no cookie (forked before export).
  if kill -0 $$; then __fleetrun_sweep "$1"; fi
  kill -KILL -- "-$__fleetrun_pg"
) <&0 &
cd -- "$__fleetrun_dir" || __fleetrun_fail "cannot enter $__fleetrun_dir"
if [ "$__fleetrun_lc_all" = __fleetrun_unset ]; then unset LC_ALL
else LC_ALL=$__fleetrun_lc_all; fi
for __fleetrun_kv in "${__fleetrun_env[@]}"; do export -- "$__fleetrun_kv"; done
export FLEETRUN_RUN="$1"
if [ "$__fleetrun_head" = "#!" ]; then exec ./script.sh "${__fleetrun_args[@]}" < /dev/null; fi
exec "$__fleetrun_bash" ./script.sh "${__fleetrun_args[@]}" < /dev/null
""".strip()

_KILL = _SWEEP + "\n" + r"""
__fleetrun_dir="${TMPDIR:-/tmp}/fleetrun-$1"
__fleetrun_pg=$(cat -- "$__fleetrun_dir/pgid" 2> /dev/null) || exit 0
LC_ALL=C rm -rf -- "$__fleetrun_dir"
kill -KILL -- "-$__fleetrun_pg" 2> /dev/null
__fleetrun_sweep "$1"
exit 0
""".strip()

assert "'" not in _BOOTSTRAP and "'" not in _KILL


def _bash(code: str, *args: str) -> str:
    # `exec`: the login shell gives way, so bash is the session leader sshd made.
    quoted = " ".join(shlex.quote(a) for a in args)
    return f"exec bash --noprofile --norc -c '{code}' fleetrun {quoted}"


def run_command_line(token: str, timeout: int) -> str:
    """The remote command that starts a run: constant code, the token and the timeout."""
    _check_token(token)
    return _bash(_BOOTSTRAP, token, str(max(0, timeout)))


def kill_command_line(token: str) -> str:
    """The remote command that kills a run's process group and removes its directory."""
    _check_token(token)
    return _bash(_KILL, token)


def _check_token(token: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", token):
        raise ValueError(f"run token {token!r}: letters, digits, '_', '.', '-' only")


class FrameError(FleetrunError, ValueError):
    """A command that cannot be framed (a NUL in a value, a reserved or invalid name)."""


def frame(command: Command) -> bytes:
    """The stdin frame for ``command``: parameters as the Linux handler passes them.

    Named parameters (public, then protected) become environment variables, unnamed ones
    positional arguments, in order; empty values are skipped, as the handler skips them.
    """
    named: list[bytes] = []
    positional: list[bytes] = []
    for parameter in command.ordered_parameters():
        if parameter.value == "":
            continue
        value = _bytes(parameter)
        if parameter.named:
            if not NAME.fullmatch(parameter.name):
                raise FrameError(f"parameter {parameter.name!r}: not a valid environment "
                                 "variable name (letters, digits, _; not starting with a digit)")
            if parameter.name.startswith(RESERVED_PREFIX):
                raise FrameError(f"parameter {parameter.name!r}: names starting with "
                                 f"{RESERVED_PREFIX!r} are reserved on SSH hosts")
            named.append(parameter.name.encode() + b"=" + value)
        else:
            positional.append(value)
    script = command.script.encode("utf-8", "surrogateescape")
    how = b"inline" if len(script) <= INLINE_MAX and b"\0" not in script else b"file"
    parts = [MAGIC, str(len(named)).encode(), *named, str(len(positional)).encode(), *positional,
             how, str(len(script)).encode()]
    return b"\0".join(parts) + b"\0" + script


def _bytes(parameter: Parameter) -> bytes:
    value = parameter.value.encode("utf-8", "surrogateescape")
    if b"\0" in value:
        label = parameter.name or "an unnamed parameter"
        raise FrameError(f"{label}: a value cannot contain a NUL byte")
    return value
