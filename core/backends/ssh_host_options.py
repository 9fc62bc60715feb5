"""The OpenSSH client options asyncssh reads but does not honour as ssh does, read per host.

asyncssh evaluates a config for one host with OpenSSH's rules (first value wins, Host and
Match blocks), but silently drops ``StrictHostKeyChecking`` and ``ConnectionAttempts``,
expands no tokens in ``UserKnownHostsFile``/``GlobalKnownHostsFile``, takes
``IdentityAgent SSH_AUTH_SOCK`` as a file name, and fails on a missing ``IdentityFile``
(shared/reference/ssh-conventions.md §2.6). :class:`FullClientConfig` is asyncssh's own
reader taught those options; the functions here turn their values into what ssh means.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from asyncssh.config import SSHClientConfig, SSHConfig

from core.errors import BadInputError

DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


class HostOptionError(BadInputError, ValueError):
    """An ssh config value fleetrun cannot use; names the host, the option and what is allowed."""


class StrictMode(enum.StrEnum):
    """``StrictHostKeyChecking`` (ssh_config(5)); ASK is fleetrun's batch review."""

    YES = "yes"
    ACCEPT_NEW = "accept-new"
    NO = "no"
    ASK = "ask"


_STRICT_VALUES = {"yes": StrictMode.YES, "true": StrictMode.YES,
                  "accept-new": StrictMode.ACCEPT_NEW,
                  "no": StrictMode.NO, "off": StrictMode.NO, "false": StrictMode.NO,
                  "ask": StrictMode.ASK}


class FullClientConfig(SSHClientConfig):
    """asyncssh's client config reader, also keeping the options it would skip.

    The extra options take asyncssh's own setters, so they follow its first-value-wins and
    Host/Match evaluation; the known_hosts lists get token and ``${VAR}`` expansion as
    OpenSSH gives them.
    """

    _handlers: dict[str, tuple[str, Callable[..., None]]] = {
        **SSHClientConfig._handlers,
        "stricthostkeychecking": ("StrictHostKeyChecking", SSHConfig._set_string),
        "connectionattempts": ("ConnectionAttempts", SSHConfig._set_string),
    }
    _percent_expand = {*SSHClientConfig._percent_expand,
                       "UserKnownHostsFile", "GlobalKnownHostsFile"}


def strict_mode(value: object, alias: str) -> StrictMode | None:
    """The host's StrictHostKeyChecking (None when unset).

    Raises:
        HostOptionError: A value ssh does not accept either.
    """
    if value is None or value == ():
        return None
    mode = _STRICT_VALUES.get(str(value).lower())
    if mode is None:
        raise HostOptionError(f"{alias}: ssh config StrictHostKeyChecking {value!s}: use yes, "
                              "accept-new, no (or off) or ask")
    return mode


def connection_attempts(value: object, alias: str) -> int:
    """How many times to try the TCP connect (ssh's ConnectionAttempts; 1 when unset).

    Raises:
        HostOptionError: Not a whole number of at least 1.
    """
    if value is None or value == ():
        return 1
    text = str(value)
    if not text.isdigit() or int(text) < 1:
        raise HostOptionError(f"{alias}: ssh config ConnectionAttempts {text}: use a whole "
                              "number of at least 1")
    return int(text)


def known_hosts_paths(value: object, default: Sequence[str]) -> tuple[Path, ...]:
    """The known_hosts files a (token-expanded) list names; ``none`` (an empty list): none."""
    if value is None or value == ():
        names: Sequence[str] = default
    elif isinstance(value, (list, tuple)):
        names = [str(name) for name in value]
    else:
        names = str(value).split()
    return tuple(Path(name).expanduser() for name in names)


def agent_path(value: object) -> str:
    """The agent socket ssh would use: IdentityAgent as ssh_config(5) reads it, else
    ``SSH_AUTH_SOCK``; "" when there is none (``none``, or nothing set)."""
    if value is None or value == ():
        return os.environ.get("SSH_AUTH_SOCK", "")
    text = str(value)
    if text.lower() == "none":
        return ""
    if text == "SSH_AUTH_SOCK":
        return os.environ.get("SSH_AUTH_SOCK", "")
    if text.startswith("$") and not text.startswith("${"):
        return os.environ.get(text[1:], "")
    return str(Path(text).expanduser())


def present_identity_files(value: object) -> tuple[list[str], list[str]]:
    """The IdentityFile entries that exist, and those that do not (ssh skips those)."""
    names = [str(v) for v in value] if isinstance(value, (list, tuple)) else (
        [str(value)] if value else [])
    present: list[str] = []
    missing: list[str] = []
    for name in names:
        path = os.path.expanduser(name)
        (present if os.path.exists(path) else missing).append(path)
    return present, missing
