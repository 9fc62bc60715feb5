"""OpenSSH client config files, read as ssh reads them: blocks, patterns, Include.

Two users: ``--fleet ssh-config`` lists a config's concrete Host aliases as machines
(:mod:`core.inventory.ssh_config`), and the SSH backend gives asyncssh, for each host, only
the lines that can apply to it (:func:`config_for`, :mod:`core.backends.ssh_config_files`).

Neither asyncssh nor the standard library has a public way to list a config's hosts
(asyncssh evaluates a config for one given host), hence this small reader. It tokenizes
lines as asyncssh does (shell-like quoting, ``Keyword=value`` accepted, patterns separated
by spaces or commas) and, like OpenSSH, ignores arguments from one starting with ``#``.
``Include`` is followed (globs; relative paths are under ``~/.ssh``, as OpenSSH and asyncssh
read them); ``Match`` blocks name no host. Every other option is left to asyncssh, which
applies the config at connect time with its own, complete semantics.
"""

from __future__ import annotations

import functools
import glob
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import BadInputError
from core.trusted_files import UnreadableFileError, read_trusted_text
from core.user_paths import UnknownUserError, expand_user

DEFAULT_CONFIG = "~/.ssh/config"
MAX_INCLUDE_DEPTH = 16
"""OpenSSH's limit on nested Include (READCONF_MAX_DEPTH): a file including itself stops."""

_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*)$")
_WILDCARDS = frozenset("*?")


class SshConfigError(BadInputError, ValueError):
    """An ssh config that cannot be read or has a malformed line; names the file and line."""


def config_error(path: Path, line: int, keyword: str, message: str) -> SshConfigError:
    return SshConfigError(f"{path}:{line}: {keyword}: {message}")



@dataclass(slots=True)
class _Block:
    """One ``Host`` block (or the global options before the first one)."""

    patterns: tuple[str, ...]
    """As written, negated ones with their ``!``; empty for a Match block (never applies)."""
    hostname: str = ""
    aliases: list[str] = field(default_factory=list)
    """The concrete aliases it names, in order."""
    lines: list[str] = field(default_factory=list)
    """Its lines as written (the Host or Match line first), Includes read in place."""
    match: bool = False
    loose: tuple[str, ...] = ()
    """Every word of its Host line, as asyncssh reads them (comments included)."""

    def may_apply_to(self, alias: str) -> bool:
        """Whether any reading of its Host line could apply it to ``alias`` (a superset)."""
        return any(_pattern_regex(p.lstrip("!")).fullmatch(alias)
                   for p in self.loose or self.patterns)

    @property
    def always(self) -> bool:
        """Whether it applies to every host (the global part, ``Host *``)."""
        return self.patterns == ("*",)

    def applies_to(self, alias: str) -> bool:
        """OpenSSH's rule: some pattern matches and no negated one does."""
        matched = False
        for pattern in self.patterns:
            negated = pattern.startswith("!")
            if _pattern_regex(pattern.lstrip("!")).fullmatch(alias):
                if negated:
                    return False
                matched = True
        return matched


@functools.lru_cache(maxsize=4096)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # Cached: a fleet's aliases are each tried against the same few wildcard patterns.
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE)


def _concrete(pattern: str) -> bool:
    return bool(pattern) and not pattern.startswith("!") and not _WILDCARDS & set(pattern)


class SshConfigReader:
    """Reads a config and the files it includes into blocks, in the order ssh sees them."""

    def __init__(self, ssh_dir: Path) -> None:
        self._ssh_dir = ssh_dir
        self.blocks: list[_Block] = [_Block(("*",))]
        self.reducible = True
        """Whether each host's part can be cut out faithfully (see :func:`config_for`)."""
        self._index: _BlockIndex | None = None

    def candidates(self, alias: str) -> list[_Block]:
        """The blocks that may apply to ``alias`` (see :func:`config_for`), in file order.

        A config with a Host block per machine is asked this once per machine: blocks
        naming hosts literally are looked up by name, so N aliases cost N, not N².
        """
        if self._index is None:
            self._index = _BlockIndex(self.blocks)
        return [self.blocks[i] for i in self._index.candidates(self.blocks, alias)]

    def read(self, path: Path, depth: int = 0) -> None:
        self._index = None
        try:
            text = read_trusted_text(path)
        except UnreadableFileError as exc:
            raise SshConfigError(str(exc)) from None
        after_include = 0
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            first = line.split(None, 1)[0].split("=", 1)[0].lower()
            if after_include and first not in ("host", "match", "include"):
                # ssh goes back to the global state after an Include; the blocks it
                # brought would swallow these lines if cut by block: keep the whole file.
                self.reducible = self.reducible and after_include == len(self.blocks)
            if first in ("host", "match"):
                after_include = 0
            if first == "include":
                after_include = len(self.blocks)
            found = _LINE.match(line)
            if found is None:
                keyword = line.split("=", 1)[0].strip()
                if keyword.lower() in ("host", "match", "include", "hostname"):
                    raise config_error(path, number, keyword, "needs a value")
                self.blocks[-1].lines.append(line)
                continue  # other options: checked by ssh/asyncssh when connecting
            keyword, rest = found.group(1), found.group(2)
            args = self._arguments(path, number, keyword, rest)
            option = keyword.lower()
            if option == "include" and not self.blocks[-1].always:
                self.reducible = False  # included under a Host or Match: its own condition
            if option == "canonicalizehostname":
                self.reducible = False  # asyncssh reads the config again for the new name
            self._apply(path, number, keyword, args, depth)
            if option != "include":
                self.blocks[-1].lines.append(line)
            if option == "host":
                # asyncssh takes every word of a Host line as a pattern, comments too: a cut
                # keeps every block it might apply (asyncssh still judges the Host lines).
                self.blocks[-1].loose = tuple(
                    p for arg in shlex.split(rest) for p in arg.split(",") if p)

    @staticmethod
    def _arguments(path: Path, number: int, keyword: str, rest: str) -> list[str]:
        try:
            args = shlex.split(rest)
        except ValueError as exc:
            raise config_error(
                path, number, keyword, f"{exc}; close the quote or remove it"
            ) from None
        for index, arg in enumerate(args):
            if arg.startswith("#"):
                return args[:index]
        return args

    def _apply(self, path: Path, number: int, keyword: str, args: list[str], depth: int) -> None:
        option = keyword.lower()
        if option == "host":
            patterns = tuple(p for arg in args for p in arg.split(",") if p and p != "!")
            if not patterns:
                raise config_error(path, number, keyword, "needs at least one host pattern")
            block = _Block(patterns)
            block.aliases = [p for p in patterns if _concrete(p)]
            self.blocks.append(block)
        elif option == "match":
            self.blocks.append(_Block((), match=True))
        elif option == "hostname" and args:
            block = self.blocks[-1]
            block.hostname = block.hostname or args[0]  # ssh: the first value obtained wins
        elif option == "include":
            if not args:
                raise config_error(path, number, keyword, "needs a file name or glob")
            if depth >= MAX_INCLUDE_DEPTH:
                raise config_error(
                    path, number, keyword,
                    f"nested more than {MAX_INCLUDE_DEPTH} deep; does a file include itself?",
                )
            for included in self._included(args, path, number, keyword):
                self.read(included, depth + 1)

    def _included(self, patterns: list[str], path: Path, number: int,
                  keyword: str) -> list[Path]:
        """The files of Include's globs, each glob's matches sorted (as glob(3) gives them)."""
        files: list[Path] = []
        for pattern in patterns:
            try:
                expanded = expand_user(pattern)
            except UnknownUserError as exc:
                raise config_error(path, number, keyword, str(exc)) from None
            if not expanded.is_absolute():
                expanded = self._ssh_dir / expanded
            matches = sorted(glob.glob(str(expanded)))
            files.extend(Path(m) for m in matches if Path(m).is_file())
        return files


class _BlockIndex:
    """Which blocks name which hosts literally; the others are tried pattern by pattern."""

    def __init__(self, blocks: list[_Block]) -> None:
        self.by_name: dict[str, list[int]] = {}
        self.always: list[int] = []
        """The global part and Match blocks: kept for every alias."""
        self.patterned: list[int] = []
        """Blocks with a wildcard (or a name not in ASCII): matched by regex."""
        for index, block in enumerate(blocks):
            if index == 0 or block.match:
                self.always.append(index)
                continue
            words = [p.lstrip("!") for p in block.loose or block.patterns]
            if all(w.isascii() and not _WILDCARDS & set(w) for w in words):
                for word in dict.fromkeys(w.lower() for w in words):
                    self.by_name.setdefault(word, []).append(index)
            else:
                self.patterned.append(index)

    def candidates(self, blocks: list[_Block], alias: str) -> list[int]:
        if not alias.isascii():  # case folding beyond ASCII: leave it to the regexes
            return [i for i, b in enumerate(blocks)
                    if i in self.always or b.may_apply_to(alias)]
        found = {*self.always, *self.by_name.get(alias.lower(), ()),
                 *(i for i in self.patterned if blocks[i].may_apply_to(alias))}
        return sorted(found)


def read_ssh_config(path: Path, *, ssh_dir: Path | None = None) -> SshConfigReader:
    """A config and what it includes, read once (for :func:`config_for`)."""
    reader = SshConfigReader(ssh_dir if ssh_dir is not None else Path("~/.ssh").expanduser())
    reader.read(path)
    return reader


def config_for(reader: SshConfigReader, alias: str) -> str | None:
    """The lines of a config that can apply to ``alias``, in order; None if it can't be cut.

    ssh reads its config top to bottom for each connection; asyncssh does too, splitting
    every line of every block, so a config of N hosts costs N on each of N connections.
    What can apply to one alias is the global part, the Host blocks any of whose patterns
    (negated or not) match it, and every Match block: a superset of the blocks that apply,
    in the same order, whose Host and Match lines asyncssh still judges, so the result is
    the same. Includes under a Host or Match line and
    ``CanonicalizeHostname`` (a second pass under another name) are not cut: None.
    """
    if not reader.reducible:
        return None
    kept = [b.lines for b in reader.candidates(alias)]
    return "\n".join(line for lines in kept for line in lines) + "\n"


def expand_hostname(hostname: str, alias: str) -> str:
    """``%h`` is the alias and ``%%`` a percent sign; other tokens are left for ssh."""
    return re.sub(r"%[%h]", lambda m: "%" if m.group() == "%%" else alias, hostname)


def host_aliases(reader: SshConfigReader) -> list[str]:
    """Every concrete alias of a Host line (no ``*``/``?``, not negated), in order, once."""
    return list(dict.fromkeys(a for block in reader.blocks for a in block.aliases))


def hostname_for(reader: SshConfigReader, alias: str) -> str:
    """The ``HostName`` ssh would use for ``alias`` (``%h`` expanded); '' when none is set."""
    hostname = next((b.hostname for b in reader.blocks if b.hostname and b.applies_to(alias)),
                    "")
    return expand_hostname(hostname, alias) if hostname else ""
