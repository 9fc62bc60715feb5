"""The fleet a command works on when ``--fleet`` names none.

In order: config.toml's top-level ``fleet`` (one source or a list, as ``--fleet`` takes
them: ``"ssh-config"``, ``"~/hosts.toml"``, ``["azure", "inventory.ini"]``); else ``azure``
when an ``[azure]`` table is configured; else the built-in sandbox.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.config_file import ConfigFileError, read_config
from core.errors import BadInputError

DEFAULT_FLEET = "sandbox"
"""What fleetrun opens on when nothing is configured."""


class DefaultFleetError(BadInputError, ValueError):
    """config.toml's ``fleet`` is not a source or a list of sources."""


def configured_fleet(config_file: Path) -> list[str]:
    """The fleet sources ``config_file`` names, in order; empty when it names none.

    Raises:
        DefaultFleetError: the file cannot be used (unreadable, not yours, not TOML), or
            ``fleet`` is not a string or a list of non-empty strings.
    """
    try:
        data = read_config(config_file)
    except ConfigFileError as exc:
        raise DefaultFleetError(str(exc)) from None
    value = data.get("fleet")
    if value is None:
        return []
    sources = [value] if isinstance(value, str) else value
    if (not isinstance(sources, list) or not sources
            or not all(isinstance(s, str) and s.strip() for s in sources)):
        raise DefaultFleetError(
            f"{config_file}: fleet: give a source or a list of sources as --fleet takes them, "
            'e.g. fleet = "ssh-config" or fleet = ["azure", "~/inventory.ini"]')
    return [os.path.expanduser(s.strip()) for s in sources]


def default_fleet(config_file: Path) -> list[str]:
    """The sources to open when none is given (see the module doc).

    Raises:
        DefaultFleetError: ``fleet`` is malformed.
        core.azure.settings.SettingsError: the ``[azure]`` table is.
    """
    if configured := configured_fleet(config_file):
        return configured
    # Here, not at the top: a run that names its fleet never reads the [azure] table.
    from core.azure.settings import load_azure_settings

    return ["azure"] if load_azure_settings(config_file).configured else [DEFAULT_FLEET]
