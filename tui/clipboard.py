"""Copy a machine's output, or a list of machines, to the clipboard and to a file.

The clipboard is the terminal's, by OSC 52 (:meth:`textual.app.App.copy_to_clipboard`):
it works over SSH and in tmux (with ``set -g set-clipboard on``), but some terminals
refuse it silently, so every copy is written to a file as well and the notification says
where. What goes out is always inert text (:func:`core.terminal_text.inert`): a machine's
bytes could hold escape sequences the terminal would obey once pasted, or inside OSC 52.

The file goes to ``<data dir>/copies`` unless the caller names a folder; it is the
owner's alone like the rest of the data dir.
"""

from __future__ import annotations

import asyncio
import codecs
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from textual.app import App

from core.config import data_dir
from core.terminal_text import inert

CLIPBOARD_LIMIT = 256 * 1024
"""Characters sent by OSC 52 at most (its end, the part an incident needs): terminals cap
what they accept (xterm, tmux: ~100 KB to 1 MB); the file holds everything."""

_CHUNK = 1 << 20
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def copies_dir() -> Path:
    """Where copies are written: ``<data dir>/copies``, created owner-only."""
    path = data_dir() / "copies"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def file_name(*parts: str, suffix: str = ".txt") -> str:
    """A file name from ``parts`` (a run id, a machine's name) with only safe characters."""
    return "-".join(_UNSAFE_NAME.sub("_", part).strip("_") or "_" for part in parts) + suffix


def inert_file_text(path: str) -> Iterable[str]:
    """The file at ``path`` as inert text, a chunk at a time (invalid UTF-8: U+FFFD)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield inert(decoder.decode(chunk))
    yield inert(decoder.decode(b"", final=True))


@dataclass(frozen=True)
class Written:
    """What :func:`write_copy` did: the file (None if it failed, ``error`` says why), the
    text's end for the clipboard and how many characters there were in all."""

    path: Path | None
    tail: str
    total: int
    error: str = ""


def write_copy(path: Path, pieces: Iterable[str]) -> Written:
    """Write ``pieces`` to ``path``, keeping their last :data:`CLIPBOARD_LIMIT` characters
    (no app involved: this may run in a thread)."""
    tail = ""
    total = 0
    try:
        with open(path, "w", encoding="utf-8", newline="") as out:
            for piece in pieces:
                out.write(piece)
                total += len(piece)
                tail = (tail + piece)[-CLIPBOARD_LIMIT:]
    except OSError as exc:
        return Written(None, tail, total, f"could not write {path}: {exc.strerror or exc}")
    return Written(path, tail, total)


def announce(app: App[object], written: Written, what: str) -> None:
    """Put the copy on the clipboard and say where its file is (or why there is none)."""
    app.copy_to_clipboard(inert(written.tail))  # inert again: a caller's may not have been
    if written.path is None:
        app.notify(f"Copied {what} to the clipboard; {written.error}", severity="warning",
                   markup=False)
        return
    cut = " (its last 256 KB)" if written.total > len(written.tail) else ""
    app.notify(f"Copied {what} to the clipboard{cut}; written to {written.path}",
               title="Copied", markup=False)


def copy_out(app: App[object], pieces: Iterable[str], *, what: str, name: str,
             folder: Path | None = None) -> Path | None:
    """Write ``pieces`` (inert text) to ``folder/name`` (default :func:`copies_dir`), put
    their end on the clipboard and say so; returns the file, or None if it failed."""
    written = write_copy((folder or copies_dir()) / name, pieces)
    announce(app, written, what)
    return written.path


async def copy_out_in_thread(app: App[object], pieces: Iterable[str], *, what: str,
                             name: str, folder: Path | None = None) -> Path | None:
    """:func:`copy_out` with the reading and writing in a thread (a big output)."""
    target = (folder or copies_dir()) / name
    written = await asyncio.to_thread(write_copy, target, pieces)
    announce(app, written, what)
    return written.path


def copy_machine_names(app: App[object], names: Iterable[str], *, what: str, name: str,
                       folder: Path | None = None) -> Path | None:
    """A list of machines (a group's), one name a line, as :func:`copy_out` copies."""
    return copy_out(app, [inert(n) + "\n" for n in names], what=what, name=name,
                    folder=folder)
