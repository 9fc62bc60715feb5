"""Reading config.toml: one way for every part that has a table in it.

The file is optional; when it is there it must be the user's own and private
(:mod:`core.trusted_files`), UTF-8 and TOML. Whatever is wrong is one
:class:`ConfigFileError` that starts with the file's path, never a traceback.
"""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from core.errors import BadInputError
from core.toml_text import parse_toml
from core.trusted_files import UntrustedFileError, check_trusted

CONFIG_FILE = "config.toml"


class ConfigFileError(BadInputError, ValueError):
    """config.toml cannot be used; the message names the file and why."""


def read_config(path: Path) -> dict[str, Any]:
    """The parsed content of config.toml at ``path``; empty when there is no such file.

    Raises:
        ConfigFileError: it is a directory, unreadable, not the user's or writable by
            others, not UTF-8 or not TOML.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigFileError(f"{path}: is a directory; config.toml must be a file")
    try:
        check_trusted(path, info)
        text = path.read_text(encoding="utf-8")
    except UntrustedFileError as exc:
        raise ConfigFileError(str(exc)) from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(f"{path}: not UTF-8 text (byte {exc.start}); save it as "
                              "UTF-8") from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        return parse_toml(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries "(at line L, column C)" and never the offending text.
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
