"""TOML from files people write, parsed with every failure as a ``TOMLDecodeError``.

``tomllib`` parses nested arrays and inline tables recursively: a line of a few thousand
``[`` exhausts Python's stack and raises ``RecursionError``, which no reader expects. Here
that is a decode error like any other, so each reader's "not valid TOML" message covers it.
"""

from __future__ import annotations

import tomllib
from typing import Any


def parse_toml(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``.

    Raises:
        tomllib.TOMLDecodeError: not TOML, or nested deeper than Python's stack allows.
    """
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise tomllib.TOMLDecodeError("arrays or tables nested too deeply") from None

