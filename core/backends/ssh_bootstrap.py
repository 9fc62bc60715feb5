"""What runs on an SSH host: a fixed bootstrap on the command line, everything else on stdin.

The remote command line holds only constant code and a run token (``exec bash ... -c
'<BOOTSTRAP>' fleetrun <token> <timeout>``): no script text and no parameter value ever
appears in the host's process list. The bootstrap reads from stdin a NUL-separated frame,
then the script itself up to EOF:

    FLEETRUN1 \\0 <n> \\0 (NAME=value \\0){n} <m> \\0 (positional \\0){m} <script bytes> EOF

and then does what the Linux managed handler does: writes the script verbatim as
``script.sh`` (0500) in a private 0700 directory that is also the working directory, exports
the named parameters, and executes the file (a shebang is honoured; without one, bash runs
it, as it does for the handler's ``bash -c <path>``, without the ``chmod`` a shebang needs)
with the positional values as exact arguments. Before that it starts a reaper, detached from the
output streams, that kills the whole process group and removes the directory as soon as
the script ends, when the timeout passes, or when the SSH session that started it is gone
(fleetrun died or the network dropped: nobody is left to read the output or cancel it):
nothing the script started outlives it.

The script is the session's main process (``exec``), so the SSH exit status is its exit
status, and a death by signal arrives as an SSH exit signal: exit codes need no guessing.
The reaper measures the timeout with bash's ``EPOCHREALTIME`` (bash 5); older bashes count
whole seconds and may stop a script up to a second late, never early.
"""

from __future__ import annotations

import re
import shlex

from core.model import Command, Parameter

MAGIC = b"FLEETRUN1"
RESERVED_PREFIX = "__fleetrun_"
"""Parameter names starting with this would collide with the bootstrap's own variables."""
BOOTSTRAP_FAILURE = 203
"""Exit status of a bootstrap that could not set the run up (its message is on stderr)."""
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# No single quote anywhere: it travels inside one. Every variable has the reserved prefix.
_BOOTSTRAP = r"""
__fleetrun_made=
__fleetrun_fail() {
  echo "fleetrun: $1" >&2
  [ -n "$__fleetrun_made" ] && rm -rf -- "$__fleetrun_dir"
  exit 203
}
umask 077
__fleetrun_dir="${TMPDIR:-/tmp}/fleetrun-$1"
__fleetrun_timeout="$2"
__fleetrun_bash="$BASH"
mkdir -m 700 -- "$__fleetrun_dir" || __fleetrun_fail "cannot create $__fleetrun_dir"
__fleetrun_made=1
IFS= read -r -d "" __fleetrun_magic || __fleetrun_fail "bad frame"
[ "$__fleetrun_magic" = FLEETRUN1 ] || __fleetrun_fail "bad frame"
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
cat > "$__fleetrun_dir/script.sh" || __fleetrun_fail "cannot save the script"
IFS= read -r -n 2 __fleetrun_head < "$__fleetrun_dir/script.sh"
if [ "$__fleetrun_head" = "#!" ]; then chmod 500 "$__fleetrun_dir/script.sh"; fi
read -r _ _ _ __fleetrun_parent __fleetrun_pg _ < /proc/$$/stat || __fleetrun_fail "no /proc"
echo "$__fleetrun_pg" > "$__fleetrun_dir/pgid"
(
  exec < /dev/null > /dev/null 2>&1
  exec {__fleetrun_tick}<> <(:)
  if [ -n "${EPOCHREALTIME:-}" ]; then
    __fleetrun_end=$(( ${EPOCHREALTIME//[!0-9]/} + __fleetrun_timeout * 1000000 ))
  else
    __fleetrun_end=$(( SECONDS + __fleetrun_timeout + 1 ))
  fi
  while kill -0 $$; do
    # When the sshd process of the session is gone, so is the client: nobody will read the
    # output, cancel or time it out, so the script goes too.
    read -r _ _ _ __fleetrun_ppid _ < /proc/$$/stat || break
    [ "$__fleetrun_ppid" = "$__fleetrun_parent" ] || break
    if [ "$__fleetrun_timeout" -gt 0 ]; then
      if [ -n "${EPOCHREALTIME:-}" ]; then __fleetrun_now=${EPOCHREALTIME//[!0-9]/}
      else __fleetrun_now=$SECONDS; fi
      [ "$__fleetrun_now" -ge "$__fleetrun_end" ] && break
    fi
    read -r -t 0.1 -u "$__fleetrun_tick" || :
  done
  rm -rf -- "$__fleetrun_dir"
  kill -KILL -- "-$__fleetrun_pg"
) &
cd -- "$__fleetrun_dir" || __fleetrun_fail "cannot enter $__fleetrun_dir"
for __fleetrun_kv in "${__fleetrun_env[@]}"; do export -- "$__fleetrun_kv"; done
if [ "$__fleetrun_head" = "#!" ]; then exec ./script.sh "${__fleetrun_args[@]}" < /dev/null; fi
exec "$__fleetrun_bash" ./script.sh "${__fleetrun_args[@]}" < /dev/null
""".strip()

_KILL = r"""
__fleetrun_dir="${TMPDIR:-/tmp}/fleetrun-$1"
__fleetrun_pg=$(cat -- "$__fleetrun_dir/pgid" 2> /dev/null) || exit 0
rm -rf -- "$__fleetrun_dir"
kill -KILL -- "-$__fleetrun_pg" 2> /dev/null
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


class FrameError(ValueError):
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
    parts = [MAGIC, str(len(named)).encode(), *named, str(len(positional)).encode(), *positional]
    return b"\0".join(parts) + b"\0" + command.script.encode("utf-8", "surrogateescape")


def _bytes(parameter: Parameter) -> bytes:
    value = parameter.value.encode("utf-8", "surrogateescape")
    if b"\0" in value:
        label = parameter.name or "an unnamed parameter"
        raise FrameError(f"{label}: a value cannot contain a NUL byte")
    return value
