"""Privilege escalation on SSH hosts, the way Ansible's ``become`` does it (sudo or su).

The run's fixed command line (:mod:`core.backends.ssh_bootstrap`) is wrapped, never the
script: ``sudo -H -S [-n | -p PROMPT] -u USER /bin/sh -c 'echo MARKER ; exec <bootstrap>'``
or ``su USER -c '...'``. MARKER (``BECOME-SUCCESS-`` and 32 random letters) and PROMPT
(``[sudo via fleetrun, key=...] password:``) are new for every run, so output of a script
can never be taken for them. Until the marker is seen, both streams belong to sudo/su:
a prompt line gets the password (once, over the channel's stdin, never on a command line),
an "incorrect password" answer ends the run at once, without a second try that could count
towards a lockout. Only after the marker does the script's frame go out on stdin, so the
password and the script never mix. Without a password sudo gets ``-n``: it fails at once
("a password is required") instead of waiting for one.

The lines sudo and su print before the marker are theirs, not the script's, and are not
kept as output.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import shlex
import string
from dataclasses import dataclass, field
from enum import StrEnum

import asyncssh

from core.errors import FleetrunError
from core.model import Command, Machine


class BecomeMethod(StrEnum):
    SUDO = "sudo"
    SU = "su"


METHODS = tuple(m.value for m in BecomeMethod)
DEFAULT_USER = "root"
"""Ansible's default become user, for an inventory that says become but not whom."""

_SU_PROMPT = re.compile(
    r"^(?:\S+'s )?(?:password|passwort|mot de passe|contraseña|senha|wachtwoord|пароль|密码|"
    r"パスワード|密碼|암호)\s*[:\uff1a]\s*$", re.IGNORECASE)  # ASCII or fullwidth colon
_WRONG = {BecomeMethod.SUDO: ("Sorry, try again.", "incorrect password attempt"),
          BecomeMethod.SU: ("Authentication failure",)}
_NEEDS_PASSWORD = ("a password is required", "Sorry, a password is required")


class BecomeError(FleetrunError):
    """sudo or su refused: the message says why, for a person."""


def parse_method(text: str, where: str) -> BecomeMethod:
    """``text`` as a become method, or a one-line error naming ``where``."""
    try:
        return BecomeMethod(text.strip().lower())
    except ValueError:
        raise BecomeError(f"{where}: {text!r} is not a become method; use "
                          f"{' or '.join(METHODS)}") from None


@dataclass(frozen=True, slots=True)
class Become:
    """Whom a run switches to on one host, how, and with which password ("" for none)."""

    method: BecomeMethod
    user: str
    password: str = field(default="", repr=False)
    marker: str = field(default_factory=lambda: "BECOME-SUCCESS-" + _letters())
    prompt: str = field(default_factory=lambda: f"[sudo via fleetrun, key={_letters()}] password:")

    def wrap(self, command_line: str) -> str:
        """``command_line`` run as the become user, the marker printed first."""
        inner = shlex.quote(f"echo {self.marker} ; {command_line}")
        if self.method is BecomeMethod.SU:
            return f"su {shlex.quote(self.user)} -c {inner}"
        ask = f"-p {shlex.quote(self.prompt)}" if self.password else "-n"
        return f"sudo -H -S {ask} -u {shlex.quote(self.user)} /bin/sh -c {inner}"


def become_for(machine: Machine, command: Command, method: str = "") -> Become | None:
    """The become of ``command`` on ``machine``, or None when it runs as the login user.

    ``--run-as USER`` (the command's ``run_as_user``) wins over the inventory's become user;
    ``method`` (``--become-method``) over the inventory's method; sudo by default.
    """
    endpoint = machine.ssh
    user = command.run_as_user or (endpoint.become_user if endpoint is not None else "")
    if not user:
        return None
    chosen = method or (endpoint.become_method if endpoint is not None else "") or "sudo"
    return Become(parse_method(chosen, "become method"), user, command.run_as_password)


async def escalate(process: asyncssh.SSHClientProcess[bytes], become: Become,
                   answer_within: float) -> None:
    """Answer sudo/su on ``process`` until the marker shows that the command runs.

    Raises:
        BecomeError: A wrong or missing password, sudo/su refusing, or no marker in time.
    """
    seen: list[str] = []
    found = asyncio.Event()
    sent = False
    failure: list[str] = []

    def examine(stream_lines: list[str], partial: str) -> None:
        nonlocal sent
        for line in [*stream_lines, partial]:
            text = line.strip()
            if not text:
                continue
            if become.marker in text:
                found.set()
                return
            if any(w in text for w in _WRONG[become.method]):
                failure.append(f"{become.method}: incorrect password")
                found.set()
                return
            if become.method is BecomeMethod.SUDO and any(n in text for n in _NEEDS_PASSWORD):
                failure.append(f"sudo: a password is required to run as {become.user}; "
                               "give --run-as-password")
                found.set()
                return
            if _is_prompt(text, become):
                if sent or not become.password:
                    why = "again" if sent else "but none was given (--run-as-password)"
                    failure.append(f"{become.method}: asked for a password {why}")
                    found.set()
                    return
                process.stdin.write(become.password.encode() + b"\n")
                sent = True
                continue
            if line is not partial:
                seen.append(text)

    async def watch(reader: asyncssh.SSHReader[bytes]) -> None:
        buffer = b""
        while not found.is_set():
            data = await reader.read(4096)
            if not data:
                return
            buffer += data
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            examine([b.decode("utf-8", "replace") for b in lines],
                    rest.decode("utf-8", "replace"))
            if _is_prompt(rest.decode("utf-8", "replace").strip(), become):
                buffer = b""  # answered (or refused) already: not examined twice

    watchers = [asyncio.create_task(watch(process.stdout)),
                asyncio.create_task(watch(process.stderr))]
    try:
        async with asyncio.timeout(answer_within):
            ended = asyncio.ensure_future(asyncio.wait(watchers))
            waiting = asyncio.ensure_future(found.wait())
            await asyncio.wait([ended, waiting], return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            waiting.cancel()
    except TimeoutError:
        raise BecomeError(f"{become.method}: no answer within {answer_within:g} s"
                          + (f" ({seen[-1]})" if seen else "")) from None
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    if failure:
        raise BecomeError(failure[0])
    if not found.is_set():
        why = seen[-1] if seen else f"{become.method} ended without starting the command"
        raise BecomeError(why if why.startswith(become.method.value) else
                          f"{become.method}: {why}")


def _is_prompt(text: str, become: Become) -> bool:
    if become.method is BecomeMethod.SUDO:
        return bool(become.password) and text.startswith(become.prompt.strip())
    return bool(_SU_PROMPT.match(text))


def _letters() -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(32))
