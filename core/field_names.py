"""Keys from people's files, as error messages name them.

An error is one line, ``FILE:LINE: FIELD: what is wrong``, shown on a terminal. The field
path is made of the file's own keys, and a key can hold anything: a newline would split
the line, an escape sequence or a bidi override would change what the terminal shows.
"""

from __future__ import annotations

import json

from core.terminal_text import UNSAFE_CHARACTERS


def shown_key(key: object) -> str:
    """A key as it goes into a field path (``keymap.fleet.mark``): as written, unless it is
    empty, padded or holds a character that would break the error's one line or play
    tricks on a terminal (newlines, escapes, bidi overrides); then quoted, escaped."""
    text = str(key)
    if text and text == text.strip() and not UNSAFE_CHARACTERS.search(text):
        return text
    return json.dumps(text)  # \n, \u001b...: TOML's basic strings escape as JSON's do
