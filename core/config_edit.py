"""Setting keys of one table in config.toml without losing the user's comments and layout.

TOML writers (tomli-w) rewrite a whole document and drop its comments, so this edits the text:
a key already in the table has its line replaced (a one-line value only), a new key goes after
the table's last key, and a missing table is appended at the end. Values are written by tomli-w,
so their quoting is TOML's. The result is parsed again before it is written, and written
through a temporary file, so a failure leaves the old file as it was.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w

from core.atomic_files import replace_file
from core.config_file import ConfigFileError, read_config

_HEADER = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\"' -]+?)\s*\]\s*(?:#.*)?$")
_ARRAY_HEADER = re.compile(r"^\s*\[\[")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+)\s*=")


def set_table_keys(path: Path, table: str, values: Mapping[str, Any]) -> None:
    """Give ``[table]`` in the config file at ``path`` these ``values``, keeping the rest.

    Raises:
        ConfigFileError: The file cannot be read (see :func:`read_config`), a key to set has
            a value spread over several lines there, or the file cannot be written.
    """
    read_config(path)  # the same checks as every reader: ours, private, UTF-8, TOML
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    lines = text.splitlines()
    start, end = _table_span(lines, table)
    if start is None:
        block = [f"[{table}]"] + [_line(key, value) for key, value in values.items()]
        if lines and lines[-1].strip():
            block.insert(0, "")
        lines += block
    else:
        last_key = start
        pending = dict(values)
        for index in range(start + 1, end):
            match = _KEY.match(lines[index])
            if match is None:
                continue
            last_key = index
            key = match[1]
            if key in pending:
                _check_one_line(path, table, key, lines[index])
                lines[index] = _line(key, pending.pop(key))
        lines[last_key + 1:last_key + 1] = [_line(k, v) for k, v in pending.items()]
    new_text = "\n".join(lines) + "\n"
    try:
        parsed = tomllib.loads(new_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: cannot set [{table}] keys here ({exc}); edit the "
                              "file by hand") from None
    held = parsed.get(table, {})
    if any(held.get(key) != value for key, value in values.items()):
        raise ConfigFileError(f"{path}: cannot set [{table}] keys here (the table is "
                              "written in a form this editor does not follow); edit the "
                              "file by hand")
    _write(path, new_text)


def _table_span(lines: list[str], table: str) -> tuple[int | None, int]:
    start: int | None = None
    for index, line in enumerate(lines):
        header = _HEADER.match(line)
        is_header = header is not None or _ARRAY_HEADER.match(line) is not None
        if start is not None and is_header:
            return start, index
        if header is not None and header[1] == table:
            start = index
    return start, len(lines)


def _check_one_line(path: Path, table: str, key: str, line: str) -> None:
    value = line.split("=", 1)[1].strip()
    try:
        tomllib.loads(f"x = {value}")
    except tomllib.TOMLDecodeError:
        raise ConfigFileError(f"{path}: [{table}] {key} spans several lines; put it on one "
                              "line or remove it, then run this again") from None


def _line(key: str, value: Any) -> str:
    return tomli_w.dumps({key: value}).strip()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        replace_file(path, text)
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot write it: {exc.strerror or exc}") from None
