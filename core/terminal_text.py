"""Text from machines made safe to show: every control character visible, none obeyed.

A machine's output can hold escape sequences that a terminal would obey: retitle the
window (OSC 0), write the clipboard (OSC 52), clear the screen or move the cursor (CSI),
or bidirectional overrides that reorder what is read. Every view that prints machine text
(the CLI's tables and group panels, ``show``, the Markdown and CSV exports, the TUI's
panes) passes it through :func:`inert` first; only the output files on disk keep the bytes
as they came.

The convention: a C0 control (other than line feed and tab) and DEL become their Unicode
"control pictures" (ESC is ``␛``, BEL ``␇``, a carriage return ``␍``), each one cell wide
like the character it stands for; C1 controls (U+0080-U+009F) and the bidirectional
formatting characters, which have no picture, become ``<U+009B>``. A ``\\r\\n`` line end
is just a line end.

JSON needs none of this, as JSON escapes C0 controls itself; :func:`json_text` escapes the
C1 and bidirectional characters as well (``\\u009b``), so that JSON printed on a terminal is
inert too, and its strings parse back to the same text.
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
"""Arabic letter mark, LRM, RLM, the embeddings and overrides (LRE..RLO), the isolates."""

_PICTURES: dict[int, str] = {
    **{code: chr(0x2400 + code) for code in range(0x20) if chr(code) not in "\n\t"},
    0x7F: "\u2421",
    **{code: f"<U+{code:04X}>" for code in (*range(0x80, 0xA0), *_BIDI)},
}

_UNSAFE_IN_JSON = re.compile("[\u0080-\u009f" + "".join(map(chr, _BIDI)) + "]")

UNSAFE_CHARACTERS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029" + "".join(map(chr, _BIDI)) + "]")
"""Everything :func:`inert` replaces, with line feed, tab and the Unicode line and paragraph
separators: what may not stand in one line of a message (an error naming a key or value
from someone's file) as it is."""


def inert(text: str) -> str:
    """``text`` with every control character replaced by a visible, inert form."""
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    return text.translate(_PICTURES)


def inert_bytes(data: bytes) -> str:
    """Bytes as inert text: invalid UTF-8 (a cut character, binary) becomes U+FFFD."""
    return inert(data.decode("utf-8", errors="replace"))


def json_text(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON that is inert on a terminal (and equal to json.dumps's once parsed)."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    return _UNSAFE_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class InertStream:
    """Turns a byte stream into inert text chunk by chunk: a character or a ``\\r\\n`` cut
    between two chunks comes out as if it had not been cut."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._return = False

    def feed(self, data: bytes, *, final: bool = False) -> str:
        text = ("\r" if self._return else "") + self._decoder.decode(data, final)
        self._return = not final and text.endswith("\r")
        if self._return:
            text = text[:-1]
        return inert(text)
