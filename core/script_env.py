"""The environment a script starts with on this machine: the account's, the run's, no more.

fleetrun's own environment may hold ``FLEETRUN_SECRET_*`` values, a run-as password, Azure
credentials, an SSH agent socket: none of it is the script's. Like the managed handlers,
a script gets a fixed ``PATH``, the ``HOME``, ``USER``, ``LOGNAME`` and ``SHELL`` of the
account it runs as, ``LANG``, its named parameters (public, then protected: a later one of
the same name wins, as the handler's ``os.Setenv`` does) and the run cookie
(:mod:`core.proctree`), set last so that no parameter can take it away. No ``TERM``: no
terminal is attached, as under the handler or an SSH command without a pty.
"""

from __future__ import annotations

import os
import pwd
import re
from collections.abc import Iterable, Mapping

from core.proctree import COOKIE_VARIABLE

SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FALLBACK_LANG = "C.UTF-8"
# A locale name and nothing else: language_TERRITORY.codeset@modifier, C or POSIX.
_PLAIN_LOCALE = re.compile(
    r"(?:C|POSIX|[A-Za-z]{2,3}(?:_[A-Za-z]{2})?)(?:\.[A-Za-z0-9-]{1,20})?(?:@[A-Za-z0-9]{1,20})?"
)


def plain_locale(lang: str | None) -> str:
    """``lang`` if it is a plain locale name, else C.UTF-8."""
    return lang if lang and _PLAIN_LOCALE.fullmatch(lang) else FALLBACK_LANG


def script_environment(
    account: pwd.struct_passwd | None,
    parameters: Iterable[tuple[str, str]],
    cookie: str,
    *,
    lang: str | None = None,
    home: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of one script.

    Args:
        account: the run-as user; None for the account fleetrun runs as.
        parameters: ``(name, value)`` pairs, public then protected; unnamed and empty
            values are not variables and are skipped.
        cookie: the run's cookie.
        lang: the caller's ``LANG``, kept only if it is a plain locale name.
        home: ``HOME`` instead of the account's (a simulated machine's).
        extra: more variables, before the parameters (a handler's own).
    """
    name, account_home, shell = _account(account)
    env = {
        "PATH": SAFE_PATH,
        "HOME": home or account_home,
        "USER": name,
        "LOGNAME": name,
        "SHELL": shell,
        "LANG": plain_locale(lang),
        **(extra or {}),
    }
    for variable, value in parameters:
        if variable and value:
            env[variable] = value
    env[COOKIE_VARIABLE] = cookie
    return env


def _account(account: pwd.struct_passwd | None) -> tuple[str, str, str]:
    if account is None:
        try:
            account = pwd.getpwuid(os.geteuid())
        except KeyError:  # a container's user without a passwd entry
            return str(os.geteuid()), "/", "/bin/sh"
    return account.pw_name, account.pw_dir, account.pw_shell or "/bin/sh"
