"""asyncssh's native-library probes without ``ldconfig``: a glob of the library folders.

At import, asyncssh asks ``ctypes.util.find_library`` for liboqs (``asyncssh.crypto.pq``:
sntrup761 key exchange) and for nettle (``asyncssh.crypto.umac``: the umac MACs). On Linux
each lookup runs ``ldconfig -p`` in a subprocess, and when the library is absent (liboqs
usually is) ``gcc`` and ``ld`` too: 40-50 ms before fleetrun can open its first connection.
ML-KEM key exchange comes from ``cryptography`` either way.

:func:`install` (run by ``core.backends``, through which every asyncssh import goes) wraps
the loading of those two modules so that, while each runs, its library names are looked up
with :func:`find_shared_library`: the ``lib<name>.so*`` files of this machine's ELF class
and architecture in the folders the dynamic linker searches (``$LD_LIBRARY_PATH``,
``/etc/ld.so.conf``'s, the standard ones): the same answer as ``ldconfig``'s cache in
practice. Other names, other callers, and ``find_library`` after those imports are as
before; on other systems nothing changes.
"""

from __future__ import annotations

import importlib.machinery
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.abc import Loader

    _LoaderBase = Loader
else:  # importlib.abc costs 4 ms to import; the import system needs no base class
    _LoaderBase = object

PROBES: Mapping[str, tuple[str, ...]] = {
    "asyncssh.crypto.pq": ("oqs", "liboqs"),
    "asyncssh.crypto.umac": ("nettle", "libnettle", "libnettle-6"),
}
"""Each probing module and the names it asks ``find_library`` for."""
LD_SO_CONF = Path("/etc/ld.so.conf")
_SONAME = re.compile(r"\.so(\.\d+)*$")
_ELF_MAGIC = b"\x7fELF"


def library_dirs(conf: Path = LD_SO_CONF,
                 environ: Mapping[str, str] | None = None) -> list[str]:
    """Where the dynamic linker looks: ``$LD_LIBRARY_PATH``, ``ld.so.conf``, the defaults."""
    import sysconfig  # here, as glob below: core.backends imports this module, cheaply

    env = os.environ if environ is None else environ
    dirs = [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
    dirs.extend(_conf_dirs(conf, depth=0))
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    for base in ("/usr/local/lib", "/lib", "/usr/lib", "/lib64", "/usr/lib64"):
        dirs.extend([f"{base}/{arch}", base] if arch else [base])
    return list(dict.fromkeys(dirs))


def _conf_dirs(conf: Path, depth: int) -> list[str]:
    """The folders ``conf`` lists, ``include`` globs followed (not too deep: no loops)."""
    import glob

    try:
        lines = conf.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    dirs: list[str] = []
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line.startswith("include") and depth < 3:
            pattern = line.removeprefix("include").strip()
            pattern = pattern if os.path.isabs(pattern) else str(conf.parent / pattern)
            for included in sorted(glob.glob(pattern)):
                dirs.extend(_conf_dirs(Path(included), depth + 1))
        elif line.startswith("/"):
            dirs.append(line)
    return dirs


def find_shared_library(name: str, dirs: Sequence[str] | None = None) -> str | None:
    """The path of ``lib<name>.so`` or ``lib<name>.so.N...`` that this interpreter can load
    (its ELF class and machine), in the first of ``dirs`` (the linker's when None) that has
    one; the versioned soname first, as ``ldconfig`` lists it. None when there is none."""
    return LibraryFolders(library_dirs() if dirs is None else dirs).find(name)


class LibraryFolders:
    """Folders to look for shared libraries in, each listed once however many names are
    looked up (the multiarch folder holds a thousand files, and is often there twice)."""

    def __init__(self, dirs: Sequence[str]) -> None:
        self._dirs = list(dict.fromkeys(os.path.realpath(d) for d in dirs))
        self._listed: dict[str, list[str]] = {}
        self._wanted = _elf_kind(sys.executable)

    def find(self, name: str) -> str | None:
        prefix = f"lib{name}.so"
        for folder in self._dirs:
            found = [path for path in (os.path.join(folder, entry)
                                       for entry in self._names_in(folder)
                                       if entry.startswith(prefix)
                                       and _SONAME.fullmatch(entry, len(prefix) - 3))
                     if os.path.isfile(path) and _elf_kind(path) == self._wanted]
            if found:
                return sorted(found, key=lambda path: (path.endswith(".so"), len(path), path))[0]
        return None

    def _names_in(self, folder: str) -> list[str]:
        if folder not in self._listed:
            try:
                self._listed[folder] = os.listdir(folder)
            except OSError:
                self._listed[folder] = []
        return self._listed[folder]


def _elf_kind(path: str) -> bytes:
    """ELF class, byte order and machine (what decides whether it loads); b'' if not ELF."""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return b""
    if len(header) < 20 or not header.startswith(_ELF_MAGIC):
        return b""
    return header[4:6] + header[18:20]


def install() -> None:
    """From now on, asyncssh's probes (whenever first imported) look by glob."""
    if sys.platform.startswith("linux") and not any(
            isinstance(finder, _ProbeFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _ProbeFinder())


class _ProbeFinder:
    """Finds a module of :data:`PROBES` as usual and hands it a loader that runs it with
    the glob lookup in place (a meta path finder by duck typing, like the loader)."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in PROBES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _GlobLookupLoader(spec.loader, PROBES[fullname])
        return spec


class _GlobLookupLoader(_LoaderBase):
    """The module's own loader, with :func:`find_shared_library` in place while it runs."""

    def __init__(self, inner: Loader, names: tuple[str, ...]) -> None:
        self._inner = inner
        self._names = names

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        import ctypes.util  # here: only a process that loads asyncssh pays for ctypes

        original = ctypes.util.find_library
        folders: list[LibraryFolders] = []  # made on the module's first lookup, then kept

        def find_library(name: str) -> str | None:
            if name not in self._names:
                return original(name)
            folders[:] = folders or [LibraryFolders(library_dirs())]
            return folders[0].find(name)

        ctypes.util.find_library = find_library
        try:
            self._inner.exec_module(module)
        finally:
            ctypes.util.find_library = original

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename...: the inner one's
        return getattr(self._inner, name)
